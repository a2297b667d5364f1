//! How log lines are written on stderr: env_logger's text (the default), or one JSON object
//! per line for log pipelines (`--log-format json`): `ts`, `level`, `target`, `msg`, and the
//! record's key-values (a request line's `request_id`, `method`, `path`, `status`, `ms`).

use std::io::Write;

use serde_json::{Map, Value};

/// `--log-format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Starts the process's logger (`RUST_LOG` filters it; `info` by default).
pub fn init(format: LogFormat) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if format == LogFormat::Json {
        builder.format(|buf, record| writeln!(buf, "{}", json_line(record)));
    }
    builder.init();
}

/// One record as a JSON object (on one line: serde_json escapes newlines in strings).
pub fn json_line(record: &log::Record<'_>) -> Value {
    let mut line = Map::new();
    line.insert(
        "ts".into(),
        chrono::Utc::now()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            .into(),
    );
    line.insert("level".into(), record.level().as_str().into());
    line.insert("target".into(), record.target().into());
    line.insert("msg".into(), record.args().to_string().into());
    let mut fields = Fields(&mut line);
    // A visitor that never fails: the result has nothing to report.
    let _ = record.key_values().visit(&mut fields);
    Value::Object(line)
}

/// Copies a record's key-values into the line (numbers stay numbers); the fixed keys win.
struct Fields<'a>(&'a mut Map<String, Value>);

impl<'kvs> log::kv::VisitSource<'kvs> for Fields<'_> {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        let value = if let Some(n) = value.to_u64() {
            Value::from(n)
        } else if let Some(n) = value.to_i64() {
            Value::from(n)
        } else if let Some(x) = value.to_f64() {
            Value::from(x)
        } else if let Some(b) = value.to_bool() {
            Value::from(b)
        } else {
            Value::from(value.to_string())
        };
        self.0.entry(key.as_str().to_string()).or_insert(value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::json_line;

    #[test]
    fn a_record_is_one_json_object_with_its_fields() {
        let kvs: [(&str, log::kv::Value<'_>); 3] = [
            ("request_id", "abc".into()),
            ("status", 404u16.into()),
            ("msg", "not this".into()),
        ];
        let line = json_line(
            &log::Record::builder()
                .args(format_args!("two\nlines"))
                .level(log::Level::Warn)
                .target("roster::request_log")
                .key_values(&kvs)
                .build(),
        );
        let text = line.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["target"], "roster::request_log");
        assert_eq!(line["msg"], "two\nlines");
        assert_eq!(line["request_id"], "abc");
        assert_eq!(line["status"], 404);
        assert!(line["ts"].as_str().unwrap().ends_with('Z'));
    }
}
