//! Values of the domain that storage and the surfaces share, typed here and stored as text:
//! a webhook delivery's state.

/// Where a webhook delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Waiting for its next attempt (or its first).
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt failed; it is retried only by a replay.
    Dead,
}

impl DeliveryState {
    /// Its stored (and served) name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
        }
    }
}

impl std::fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored delivery state Roster does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown delivery state `{0}`")]
pub struct UnknownDeliveryState(String);

impl TryFrom<String> for DeliveryState {
    type Error = UnknownDeliveryState;

    fn try_from(stored: String) -> Result<Self, Self::Error> {
        match stored.as_str() {
            "pending" => Ok(DeliveryState::Pending),
            "delivered" => Ok(DeliveryState::Delivered),
            "dead" => Ok(DeliveryState::Dead),
            _ => Err(UnknownDeliveryState(stored)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DeliveryState;

    #[test]
    fn each_state_reads_back_from_its_stored_name() {
        for s in [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Dead,
        ] {
            assert_eq!(DeliveryState::try_from(s.as_str().to_string()).unwrap(), s);
        }
        assert!(DeliveryState::try_from("lost".to_string()).is_err());
    }
}
