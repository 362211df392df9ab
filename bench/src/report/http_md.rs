//! The *HTTP* section of `report.md`: per policy (or server), where it was reached, what it
//! listed, how prompts were sent, and every failure by kind.

use std::fmt::Write as _;

use super::json::Report;

/// Appends the section when any policy ran over HTTP.
pub fn section(out: &mut String, report: &Report, order: &[&str]) {
    let rows: Vec<_> = order
        .iter()
        .filter_map(|p| report.policies.get(*p).map(|s| (p, s)))
        .filter_map(|(p, s)| s.http.as_ref().map(|h| (p, s, h)))
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n## HTTP\n");
    let _ = writeln!(
        out,
        "| policy | URL | sent | answered | failed | not sent | mean / P99 inter-token (ms) | mean / max send lag (ms) | wall-clock (s) |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (policy, _, h) in &rows {
        let _ = writeln!(
            out,
            "| {policy} | {} | {} | {} | {} | {} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} |",
            h.url,
            h.sent,
            h.answered,
            h.failures.total(),
            h.not_sent,
            h.itl_ms.mean,
            h.itl_ms.p99,
            h.send_lag_ms.mean,
            h.send_lag_ms.max,
            h.wall_s
        );
    }
    for (policy, _, h) in &rows {
        let models = if h.models.is_empty() {
            "nothing (it did not answer)".to_string()
        } else {
            h.models
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "\n**{policy}**: `/v1/models` listed {models}; prompts sent as {}.",
            h.prompts
        );
        let f = &h.failures;
        let mut kinds: Vec<String> = f
            .http_status
            .iter()
            .map(|(code, n)| format!("HTTP {code}: {n}"))
            .collect();
        for (name, n) in [
            ("connection failed", f.connect),
            ("timed out", f.timeout),
            ("broken stream", f.broken_stream),
            ("not an event stream", f.not_sse),
            ("error in the stream", f.stream_error),
            ("unanswered at the deadline", f.unanswered),
        ] {
            if n > 0 {
                kinds.push(format!("{name}: {n}"));
            }
        }
        if let Some(line) = h.server.as_ref().map(server_line) {
            let _ = writeln!(out, "{line}");
        }
        if kinds.is_empty() {
            let _ = writeln!(out, "No request failed.");
        } else {
            let _ = writeln!(out, "Failures: {}. First ones:\n", kinds.join(", "));
            for line in &h.first_failures {
                let _ = writeln!(out, "- {line}");
            }
        }
    }
}

/// What the server's `/metrics` said, in one sentence.
fn server_line(f: &crate::http::server_metrics::ServerFigures) -> String {
    let pct = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{:.1} %", v * 100.0));
    let count = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.0}"));
    format!(
        "Its `/metrics` ({} scrapes): invalid KV {} on average (at most {}), prefix-cache \
         hits {} of prompt tokens looked up, {} preemptions, {} swap-ins, {} swap-outs.",
        f.scrapes,
        pct(f.invalid_kv_share_mean),
        pct(f.invalid_kv_share_max),
        pct(f.prefix_cache_hit_share),
        count(f.preemptions),
        count(f.swap_ins),
        count(f.swap_outs),
    )
}
