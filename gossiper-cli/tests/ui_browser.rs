//! The web views in a real browser (headless Chromium over WebDriver): the agent's `/ui/`
//! follows a live three-agent cluster (all alive, then one killed with SIGKILL and shown dead),
//! writes and deletes a key that the API then serves, and renders a value full of markup as
//! text; the `simulate --html` and `simulate-cluster --html` reports draw their charts with no
//! console error. Screenshots land in `target/ui-screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them); without them the
//! tests fail and say so.

mod agent_support;
mod browser_support;
mod common;

use std::path::Path;
use std::time::Duration;

use agent_support::cluster;
use browser_support::Browser;
use fantoccini::Locator;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);
/// A value a page that built markup from text would turn into an element.
const MARKUP: &str = "<img src=x onerror=alert(1)>";

/// The status word shown in `name`'s row, as a script's condition.
fn row_shows(name: &str, status: &str) -> String {
    format!(
        "const r = document.querySelector('#member-rows tr[data-name=\"{name}\"]'); \
         return r !== null && r.cells[2].textContent === '{status}';"
    )
}

#[tokio::test(flavor = "current_thread")]
async fn the_cluster_view_follows_a_crash_and_writes_keys_as_text() {
    let mut agents = cluster(3, &[]);
    let browser = Browser::start(1280, 900).await;
    let page = format!("http://{}/ui/", agents[0].api);
    browser.client.goto(&page).await.expect("open /ui/");

    browser
        .wait_until(
            "the page to list three members alive",
            WAIT,
            "const rows = [...document.querySelectorAll('#member-rows tr')]; \
             return rows.length === 3 && rows.every(r => r.cells[2].textContent === 'alive');",
        )
        .await;
    browser.screenshot("cluster-all-alive").await;

    // The filter box narrows the table.
    let filter = browser.client.find(Locator::Css("#filter")).await.unwrap();
    filter.send_keys("n1").await.unwrap();
    browser
        .wait_until(
            "the filter to leave n1 alone",
            WAIT,
            "const rows = [...document.querySelectorAll('#member-rows tr')]; \
             return rows.length === 1 && rows[0].dataset.name === 'n1';",
        )
        .await;
    filter.clear().await.unwrap();
    browser
        .wait_until(
            "the cleared filter to show all three",
            WAIT,
            "return document.querySelectorAll('#member-rows tr').length === 3;",
        )
        .await;

    agents[2].kill9();
    let took = browser
        .wait_until("the page to show n2 dead", WAIT, &row_shows("n2", "dead"))
        .await;
    browser
        .wait_until(
            "the timeline to show n2 down",
            WAIT,
            "return [...document.querySelectorAll('#events li')] \
             .some(li => li.textContent.includes('n2 is down'));",
        )
        .await;
    let shot = browser.screenshot("cluster-n2-dead").await;
    eprintln!("n2 shown dead {took:?} after kill -9; {}", shot.display());
    assert!(
        browser
            .eval(&row_shows("n1", "alive"))
            .await
            .as_bool()
            .unwrap()
    );

    // A key set from the page is served by the API, and its markup stays text.
    for (field, text) in [("#w-key", "ui-test"), ("#w-value", MARKUP)] {
        let input = browser.client.find(Locator::Css(field)).await.unwrap();
        input.send_keys(text).await.unwrap();
    }
    browser
        .client
        .find(Locator::Css("#w-set"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_until(
            "the page to confirm the write",
            WAIT,
            "return document.getElementById('w-result').textContent.startsWith('set ui-test');",
        )
        .await;
    let (status, body) = agents[0].call("GET", "/v1/kv/n0/ui-test", b"");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"], MARKUP, "{body}");
    browser
        .wait_until(
            "the key table and the timeline to show the value as text",
            WAIT,
            &format!(
                "const row = document.querySelector('#key-rows tr[data-key=\"ui-test\"]'); \
                 const shown = [...document.querySelectorAll('#events li')] \
                   .some(li => li.textContent.includes({markup})); \
                 return row !== null && row.cells[1].textContent === {markup} && shown;",
                markup = Value::from(MARKUP)
            ),
        )
        .await;
    let elements = browser
        .eval("return document.querySelectorAll('main img, main [onerror]').length;")
        .await;
    assert_eq!(elements, 0, "a value became markup");
    browser.screenshot("cluster-key-set").await;

    browser
        .client
        .find(Locator::Css("#w-delete"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_until(
            "the page to confirm the delete",
            WAIT,
            "return document.getElementById('w-result').textContent.startsWith('deleted ui-test');",
        )
        .await;
    assert_eq!(agents[0].call("GET", "/v1/kv/n0/ui-test", b"").0, 404);

    // A narrow window: the page reflows instead of overflowing sideways.
    browser.client.set_window_size(420, 900).await.unwrap();
    browser
        .wait_until(
            "the page to fit a narrow window",
            WAIT,
            "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
        )
        .await;
    browser.screenshot("cluster-narrow").await;

    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}

/// Loads a report file and checks it drew: SVG with marks in it, no console error.
async fn check_report(browser: &Browser, path: &Path, shot: &str, marks: &str, least: u64) {
    browser
        .client
        .goto(&format!("file://{}", path.display()))
        .await
        .expect("open the report");
    let count = browser
        .eval(&format!(
            "return document.querySelectorAll('{marks}').length;"
        ))
        .await;
    assert!(
        count.as_u64().is_some_and(|c| c >= least),
        "{}: {count} of {marks}, at least {least} expected",
        path.display()
    );
    let drawn = browser
        .eval(
            "return [...document.querySelectorAll('svg')].every(s => { \
               const b = s.getBoundingClientRect(); return b.width > 100 && b.height > 100; });",
        )
        .await;
    assert_eq!(drawn, true, "{}: an SVG has no size", path.display());
    browser.screenshot(shot).await;
    let errors = browser.console_errors().await;
    assert!(
        errors.is_empty(),
        "{}: console errors: {errors:#?}",
        path.display()
    );
}

#[tokio::test(flavor = "current_thread")]
async fn the_simulation_reports_draw_their_charts_with_no_console_error() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-reports");
    std::fs::create_dir_all(&dir).unwrap();
    let simulate = dir.join("simulate.html");
    let cluster_report = dir.join("simulate-cluster.html");
    let o = common::gossiper(
        "simulate",
        &[
            "--nodes",
            "500",
            "--runs",
            "3",
            "--html",
            simulate.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", common::stderr(&o));
    let o = common::gossiper(
        "simulate-cluster",
        &[
            "--nodes",
            "30",
            "--crash",
            "25:4",
            "--duration",
            "6s",
            "--html",
            cluster_report.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", common::stderr(&o));

    let browser = Browser::start(1100, 1400).await;
    // The informed-fraction chart: the runs, their mean and the theory curve are polylines.
    check_report(
        &browser,
        &simulate,
        "report-simulate",
        "svg polyline, svg path",
        4,
    )
    .await;
    let theory = browser
        .eval("return document.body.textContent.includes('mean-field theory');")
        .await;
    assert_eq!(theory, true, "the theory curve's legend");
    // The heat map: cells as rectangles, and the crashed n4 dead to every live node at the end.
    check_report(
        &browser,
        &cluster_report,
        "report-simulate-cluster",
        "svg.heatmap rect",
        30,
    )
    .await;
    let crash_seen = browser
        .eval(
            "return [...document.querySelectorAll('svg.heatmap rect title')] \
             .some(t => t.textContent.startsWith('n4 · crash') && t.textContent.includes('0 alive, 0 suspect, 29 dead'));",
        )
        .await;
    assert_eq!(
        crash_seen, true,
        "the heat map shows n4 dead to all 29 others"
    );
}
