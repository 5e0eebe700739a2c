//! `--log-format json`: one JSON object per line with the field names of
//! etcd's (zap's) JSON logs, so log pipelines written for etcd read
//! Concord's: `level`, `ts` (RFC 3339, UTC, milliseconds), `caller`
//! (`file:line`), `msg`, then the event's own fields, and the fields of
//! the spans it happened in.
//!
//! ```text
//! {"level":"warn","ts":"2026-11-26T10:33:16.167Z","caller":"server/src/health.rs:104","msg":"serving /health false","reason":"RAFT NO LEADER"}
//! ```

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter of `--log-format json`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ZapJson;

/// zap's name of a level.
fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "debug",
    }
}

/// An event's fields as JSON values: numbers and booleans as such,
/// everything else as the text it displays as.
#[derive(Default)]
struct Fields(Map<String, Value>);

impl Fields {
    fn put(&mut self, field: &Field, v: Value) {
        let name = match field.name() {
            "message" => "msg",
            // The names zap reserves keep their meaning.
            n @ ("level" | "ts" | "caller" | "msg") => return self.put_renamed(n, v),
            n => n,
        };
        self.0.insert(name.to_string(), v);
    }

    fn put_renamed(&mut self, name: &str, v: Value) {
        self.0.insert(format!("fields.{name}"), v);
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let v = serde_json::Number::from_f64(value).map_or_else(|| Value::String(value.to_string()), Value::Number);
        self.put(field, v);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, value.to_string().into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
}

/// One event as zap's JSON object, its fixed keys first.
fn render(event: &Event<'_>, span_fields: Map<String, Value>) -> String {
    let meta = event.metadata();
    let caller = match (meta.file(), meta.line()) {
        (Some(file), Some(line)) => format!("{file}:{line}"),
        _ => meta.target().to_string(),
    };
    let mut fields = Fields::default();
    event.record(&mut fields);
    let msg = fields.0.remove("msg").unwrap_or_else(|| "".into());
    let fixed = [
        ("level", Value::from(level_name(meta.level()))),
        (
            "ts",
            humantime::format_rfc3339_millis(std::time::SystemTime::now())
                .to_string()
                .into(),
        ),
        ("caller", caller.into()),
        ("msg", msg),
    ];
    let mut line = String::from("{");
    let mut seen = std::collections::HashSet::new();
    let rest = span_fields.into_iter().chain(fields.0);
    for (k, v) in fixed.into_iter().map(|(k, v)| (k.to_string(), v)).chain(rest) {
        if !seen.insert(k.clone()) {
            continue;
        }
        if line.len() > 1 {
            line.push(',');
        }
        line.push_str(&Value::String(k).to_string());
        line.push(':');
        line.push_str(&v.to_string());
    }
    line.push('}');
    line
}

impl<S, N> FormatEvent<S, N> for ZapJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        // The spans' fields, as the JSON field formatter stored them.
        let mut span_fields = Map::new();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                let Some(stored) = ext.get::<FormattedFields<N>>() else {
                    continue;
                };
                if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(stored) {
                    span_fields.extend(m);
                }
            }
        }
        writeln!(writer, "{}", render(event, span_fields))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Buf {
            self.clone()
        }
    }

    #[test]
    fn lines_have_zaps_field_names() {
        let buf = Buf::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(buf.clone())
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(ZapJson)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", peer = "10.0.0.2:4000");
            let _in = span.enter();
            tracing::warn!(took_ms = 12.5, member = %format_args!("{:x}", 255), ok = false, "apply took too long");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let v: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["level"], "warn");
        assert_eq!(v["msg"], "apply took too long");
        assert_eq!(v["took_ms"], 12.5);
        assert_eq!(v["member"], "ff");
        assert_eq!(v["ok"], false);
        assert_eq!(v["peer"], "10.0.0.2:4000");
        assert!(
            v["caller"].as_str().unwrap().starts_with("server/src/log_format.rs:"),
            "{v}"
        );
        let ts = v["ts"].as_str().unwrap();
        assert!(ts.ends_with('Z') && ts.len() == 24, "{ts}");
        // zap's order: the fixed keys first.
        assert!(text.starts_with(r#"{"level":"warn","ts":""#), "{text}");
        let caller = text.find(r#","caller":"#).unwrap();
        assert!(caller < text.find(r#","msg":"#).unwrap());
    }
}
