//! Receiving a SCIM request's body: bounded in size, in time, and in how much memory all the
//! bodies being received at once may take together.

use std::time::Duration;

use actix_web::web;
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::scim::ScimError;
use crate::scim::discovery::MAX_PAYLOAD_BYTES;

/// The process's budget of bytes for bodies being received.
pub struct BodyBudget {
    bytes: std::sync::Arc<Semaphore>,
}

impl BodyBudget {
    pub fn new(bytes: usize) -> BodyBudget {
        BodyBudget {
            bytes: std::sync::Arc::new(Semaphore::new(bytes)),
        }
    }

    /// Takes `n` more bytes of the budget into `held`, or says the server is full.
    fn take(&self, held: &mut Option<OwnedSemaphorePermit>, n: usize) -> Result<(), ScimError> {
        let n = u32::try_from(n).map_err(|_| too_large())?;
        let permit = self.bytes.clone().try_acquire_many_owned(n).map_err(|_| {
            ScimError::unavailable(
                "the server is receiving too many large requests at once; retry shortly",
            )
        })?;
        match held {
            Some(h) => h.merge(permit),
            None => *held = Some(permit),
        }
        Ok(())
    }
}

fn too_large() -> ScimError {
    ScimError::payload_too_large(format!(
        "request body is larger than {MAX_PAYLOAD_BYTES} bytes"
    ))
}

/// Reads the body: a SCIM 413 past `MAX_PAYLOAD_BYTES` (at once when `Content-Length` says
/// so), 408 past `deadline`, 503 when the budget is spent. The budget is given back once the
/// body is received (or refused).
pub async fn receive(
    payload: web::Payload,
    budget: &BodyBudget,
    deadline: Duration,
) -> Result<web::Bytes, ScimError> {
    match actix_web::rt::time::timeout(deadline, read(payload, budget)).await {
        Ok(result) => result,
        Err(_) => Err(ScimError::new(
            408,
            None,
            format!(
                "the request body did not arrive within {} seconds",
                deadline.as_secs_f64()
            ),
        )),
    }
}

async fn read(mut payload: web::Payload, budget: &BodyBudget) -> Result<web::Bytes, ScimError> {
    let mut held = None;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| ScimError::invalid_syntax("could not read the request body"))?;
        if body.len() + chunk.len() > MAX_PAYLOAD_BYTES {
            return Err(too_large());
        }
        budget.take(&mut held, chunk.len())?;
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Refuses a body that its `Content-Length` says is too large, before reading any of it.
pub fn check_declared_length(req: &actix_web::HttpRequest) -> Result<(), ScimError> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(n) if n > MAX_PAYLOAD_BYTES as u64 => Err(too_large()),
        _ => Ok(()),
    }
}
