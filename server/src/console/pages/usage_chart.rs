//! The usage page: requests per minute per key over the last hour, as SVG bar charts.

use super::*;

/// One bar of the chart: a minute's requests, and its 429s drawn over them.
struct Bar {
    x: i64,
    y: i64,
    height: i64,
    limited_y: i64,
    limited_height: i64,
    label: String,
}

struct KeyChart {
    key_id: String,
    shown: String,
    requests: i64,
    limited: i64,
    peak: i64,
    bars: Vec<Bar>,
}

#[derive(Template)]
#[template(path = "console/usage.html")]
struct UsagePage {
    nav: Option<Nav>,
    charts: Vec<KeyChart>,
    from: String,
    to: String,
}

/// The chart's drawing area (SVG user units).
const CHART_HEIGHT: i64 = 120;
const BAR_WIDTH: i64 = 10;

/// `GET /admin/usage`: requests per minute per key over the last hour, and 429s.
pub(crate) async fn usage(State(state): State<AppState>, admin: CurrentAdmin) -> PageResult {
    state
        .usage
        .flush(&state.store, state.clock.as_ref())
        .await?;
    let now_minute = state.clock.now_unix().div_euclid(60);
    let first = now_minute - CHART_MINUTES + 1;
    let rows = usage::tenant_usage(&state.store, admin.tenant(), first).await?;
    let keys = Admin::new(&state.store, state.clock.as_ref())
        .keys(Some(admin.tenant()))
        .await?;
    let charts = keys
        .iter()
        .rev()
        .filter_map(|key| {
            let mine: Vec<_> = rows.iter().filter(|r| r.key_id == key.id).collect();
            if mine.is_empty() {
                return None;
            }
            let peak = mine.iter().map(|r| r.requests).max().unwrap_or(1).max(1);
            let scale = |n: i64| (n * CHART_HEIGHT + peak - 1) / peak;
            let bars = mine
                .iter()
                .map(|r| {
                    let height = scale(r.requests);
                    let limited_height = scale(r.limited);
                    Bar {
                        x: (r.minute - first) * BAR_WIDTH,
                        y: CHART_HEIGHT - height,
                        height,
                        limited_y: CHART_HEIGHT - limited_height,
                        limited_height,
                        label: format!(
                            "{}: {} requests, {} answered 429",
                            when(r.minute * 60),
                            r.requests,
                            r.limited
                        ),
                    }
                })
                .collect();
            Some(KeyChart {
                key_id: key.id.clone(),
                shown: format!("ss_{}_…{}", key.mode, key.last4),
                requests: mine.iter().map(|r| r.requests).sum(),
                limited: mine.iter().map(|r| r.limited).sum(),
                peak,
                bars,
            })
        })
        .collect();
    html(
        &UsagePage {
            nav: admin.nav("usage"),
            charts,
            from: when(first * 60),
            to: when((now_minute + 1) * 60),
        },
        StatusCode::OK,
    )
}
