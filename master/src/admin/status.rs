//! The status page: one HTML document, with its CSS inline and no script
//! or external asset, refreshed by the browser every 5 s.

use std::fmt::Write;
use std::time::SystemTime;

use super::Admin;
use crate::health::{Census, Kind, VolumeState};

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `1.5 GiB`, `320 KiB`, `12 B`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// `3d 4h`, `5m 12s`.
fn ago(t: Option<SystemTime>) -> String {
    let Some(secs) = t.and_then(|t| t.elapsed().ok()).map(|d| d.as_secs()) else {
        return "—".into();
    };
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m {}s", secs / 60, secs % 60),
        3600..=86399 => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d {}h", secs / 86400, secs % 86400 / 3600),
    }
}

const STYLE: &str = "body{font:15px/1.4 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}\
header{background:#1d2330;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}\
header p{margin:2px 0 0;color:#b8c0cc;font-size:13px}main{padding:16px 24px;max-width:1200px}\
.cards{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:20px}\
.card{background:#fff;border-radius:6px;padding:10px 16px;min-width:140px;box-shadow:0 1px 2px #0002}\
.card b{display:block;font-size:22px}.card span{color:#5b6472;font-size:13px}\
table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 2px #0002}\
th,td{text-align:left;padding:7px 10px;border-bottom:1px solid #e3e6ea;font-size:14px}\
th{background:#eef0f3}td.num{text-align:right;font-variant-numeric:tabular-nums}\
.up{color:#fff;background:#2e7d32;border-radius:4px;padding:1px 8px}\
.down{color:#fff;background:#c62828;border-radius:4px;padding:1px 8px}\
.bar{background:#e3e6ea;border-radius:3px;height:8px;width:120px;display:inline-block}\
.bar i{display:block;height:8px;border-radius:3px;background:#1565c0}\
.bar i.full{background:#c62828}.err{color:#c62828;font-size:13px}\
h2{font-size:17px;margin:22px 0 8px}footer{color:#5b6472;font-size:13px;padding:16px 24px}";

/// The whole page.
pub fn page(admin: &Admin) -> String {
    let app = &admin.app;
    let volumes = app.health.volumes();
    let census = app.health.census();
    let mut out = String::with_capacity(8192);
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"5\"><title>mkv status</title>\
         <style>{STYLE}</style></head><body><header><h1>mkv cluster status</h1>\
         <p>master {} · version {} · up {}</p></header><main>",
        esc(&admin.listen),
        env!("CARGO_PKG_VERSION"),
        ago(Some(app.health.started)),
    );
    cards(&mut out, admin, &volumes, &census);
    out.push_str("<h2>Volumes</h2>");
    volume_table(&mut out, &volumes, &census);
    let _ = write!(
        out,
        "</main><footer>Keys counted {} ago (every {:?}; took {} ms). Volumes checked every 2 s. \
         Metrics for Prometheus at <a href=\"/metrics\">/metrics</a>; \
         <a href=\"/health\">/health</a>, <a href=\"/ready\">/ready</a>. This page refreshes every 5 s.</footer></body></html>",
        ago(census.at),
        admin.census_every,
        census.took.as_millis(),
    );
    out
}

fn card(out: &mut String, value: &str, label: &str) {
    let _ = write!(
        out,
        "<div class=\"card\"><b>{}</b><span>{}</span></div>",
        esc(value),
        esc(label)
    );
}

fn cards(out: &mut String, admin: &Admin, volumes: &[VolumeState], census: &Census) {
    let app = &admin.app;
    out.push_str("<div class=\"cards\">");
    match admin.not_ready() {
        None => card(out, "Ready", "index open, volumes enough for the replicas"),
        Some(why) => card(out, "Not ready", &why),
    }
    let up = volumes.iter().filter(|v| v.up).count();
    card(out, &format!("{up} of {}", volumes.len()), "volumes up");
    card(out, &app.cluster.replicas.to_string(), "replicas per key");
    card(out, &census.keys.to_string(), "keys");
    card(out, &census.unlinked.to_string(), "unlinked keys");
    card(out, &bytes(census.bytes), "stored (one copy)");
    match app.health.rates() {
        Some([all, e4, e5, bin, bout]) => {
            card(out, &format!("{all:.1}/s"), "requests (last minute)");
            card(out, &format!("{e4:.1}/s · {e5:.1}/s"), "errors 4xx · 5xx");
            card(
                out,
                &format!("{}/s · {}/s", bytes(bin as u64), bytes(bout as u64)),
                "in · out",
            );
        }
        None => card(out, "—", "requests (measuring)"),
    }
    let failures = crate::metrics::METRICS.replica_failures_total();
    card(out, &failures.to_string(), "failed requests to volumes");
    out.push_str("</div>");
}

fn volume_table(out: &mut String, volumes: &[VolumeState], census: &Census) {
    out.push_str(
        "<table><thead><tr><th>Volume</th><th>State</th><th>Server</th><th>Check</th>\
         <th>Disk used</th><th>Free</th><th></th><th>Files</th><th>Keys</th><th>Since</th></tr></thead><tbody>",
    );
    for v in volumes {
        let state = match (v.checked, v.up) {
            (false, _) => "<span>checking</span>".to_string(),
            (true, true) => "<span class=\"up\">up</span>".to_string(),
            (true, false) => "<span class=\"down\">down</span>".to_string(),
        };
        let kind = match v.kind {
            Some(Kind::VolumeUring) => "volume-uring",
            Some(Kind::Nginx) => "nginx",
            None => "—",
        };
        let latency = v
            .latency
            .map_or("—".into(), |d| format!("{:.1} ms", d.as_secs_f64() * 1e3));
        let (used, free, bar) = match (v.disk_total, v.disk_free) {
            (Some(t), Some(f)) if t > 0 => {
                let pct = (t.saturating_sub(f)) as f64 * 100.0 / t as f64;
                let class = if pct >= 90.0 { " class=\"full\"" } else { "" };
                (
                    format!("{} ({pct:.0}%)", bytes(t - f.min(t))),
                    bytes(f),
                    format!("<span class=\"bar\" title=\"{pct:.0}% used\"><i{class} style=\"width:{pct:.0}%\"></i></span>"),
                )
            }
            _ => ("—".into(), "—".into(), String::new()),
        };
        let files = v.files.map_or("—".into(), |n| n.to_string());
        let keys = census.per_volume.get(&v.name).copied().unwrap_or(0);
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{state}</td><td>{kind}</td><td class=\"num\">{latency}</td>\
             <td class=\"num\">{used}</td><td class=\"num\">{free}</td><td>{bar}</td>\
             <td class=\"num\">{files}</td><td class=\"num\">{keys}</td><td>{}</td></tr>",
            esc(&v.name),
            ago(v.since),
        );
        if let Some(e) = &v.error {
            let _ = write!(
                out,
                "<tr><td></td><td colspan=\"9\" class=\"err\">{}</td></tr>",
                esc(e)
            );
        }
    }
    out.push_str("</tbody></table>");
}
