//! What the service's binaries tell their operators about themselves. Logs: text lines for
//! people (the default), or with `--log-format json` (`ZUN_LOG_FORMAT=json`) one JSON object
//! per line for machines: the time, level, target and message and the event's own fields at
//! the top, and under `spans` every span it happened in, outermost first, with its fields
//! (`request_id`, `project`, `capsule`, `host`, ...: whatever the request, RPC message or
//! capsule span knows).

use std::io::Write;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Text for people.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The filter: `$env_var` if set (`info,zun_api=debug`), else `default`.
fn filter(env_var: &str, default: &str) -> EnvFilter {
    EnvFilter::try_from_env(env_var).unwrap_or_else(|_| EnvFilter::new(default))
}

/// A subscriber writing `format` lines to `writer`, filtered by `filter`; text in colour only
/// when `ansi` (a terminal: a log file gets no escape codes).
fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    ansi: bool,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let base = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi && format == LogFormat::Text);
    match format {
        LogFormat::Text => Box::new(base.with_target(false).finish()),
        LogFormat::Json => Box::new(
            base.json()
                .with_target(true)
                .with_current_span(false)
                .with_span_list(true)
                .flatten_event(true)
                .finish(),
        ),
    }
}

/// Installs the process's logger: `format` lines on stderr, filtered by `$env_var` or
/// `default`. Called once, first thing in `main`.
pub fn init_logs(format: LogFormat, env_var: &str, default: &str) {
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal();
    let sub = subscriber(format, filter(env_var, default), std::io::stderr, ansi);
    let installed = tracing::subscriber::set_global_default(sub);
    if installed.is_err() {
        let _ = writeln!(std::io::stderr(), "a logger was already installed");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Lines written, kept for the test to read.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Lines {
        type Writer = Lines;
        fn make_writer(&'w self) -> Lines {
            self.clone()
        }
    }

    fn logged(format: LogFormat) -> String {
        let lines = Lines::default();
        let sub = subscriber(format, EnvFilter::new("info"), lines.clone(), false);
        tracing::subscriber::with_default(sub, || {
            let request = tracing::info_span!("request", request_id = "req-1", project = "p1");
            let _r = request.enter();
            let rpc = tracing::info_span!("rpc", capsule = "c-1", host = "node-1");
            let _c = rpc.enter();
            tracing::info!(status = 202, "handled");
            tracing::debug!("filtered out");
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        text
    }

    #[test]
    fn json_lines_carry_the_spans_fields() {
        let text = logged(LogFormat::Json);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        let v: serde_json::Value = serde_json::from_str(lines[0]).expect("one JSON object");
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["message"], "handled");
        assert_eq!(v["status"], 202);
        assert_eq!(v["target"], module_path!());
        assert!(
            v["timestamp"].as_str().is_some_and(|t| t.contains('T')),
            "{v}"
        );
        let spans = v["spans"].as_array().expect("the spans it happened in");
        assert_eq!(spans[0]["name"], "request");
        assert_eq!(spans[0]["request_id"], "req-1");
        assert_eq!(spans[0]["project"], "p1");
        assert_eq!(spans[1]["capsule"], "c-1");
        assert_eq!(spans[1]["host"], "node-1");
    }

    #[test]
    fn text_lines_are_for_people() {
        let text = logged(LogFormat::Text);
        assert!(text.contains("INFO"), "{text}");
        assert!(text.contains("request_id=\"req-1\""), "{text}");
        assert!(
            !text.contains('\u{1b}'),
            "no colour outside a terminal: {text}"
        );
        assert!(text.contains("handled"), "{text}");
        assert!(serde_json::from_str::<serde_json::Value>(text.trim()).is_err());
    }
}
