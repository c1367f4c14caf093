//! The web views in a real browser (headless Chromium over WebDriver): the agent's `/ui/`
//! follows a live three-agent cluster (all alive, then one killed with SIGKILL and shown dead),
//! writes and deletes a key that the API then serves, and renders a value full of markup as
//! text; the `simulate --html` and `simulate-cluster --html` reports draw their charts with no
//! console error; a memberlist agent serves the same page with its members and user events.
//! Screenshots land in `target/ui-screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them); without them the
//! tests fail and say so.

mod agent_support;
mod browser_support;
mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use agent_support::{Agent, cluster};
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

/// Whether a timeline entry holds `text`, as a script's condition.
fn timeline_has(text: &str) -> String {
    format!(
        "return [...document.querySelectorAll('#events li')] \
           .some(li => li.textContent.includes({}));",
        Value::from(text)
    )
}

/// Opens the UI of the agent whose API is at `api`.
async fn open_ui(browser: &Browser, api: &str) {
    let page = format!("http://{api}/ui/");
    browser.client.goto(&page).await.expect("open /ui/");
}

#[tokio::test(flavor = "current_thread")]
async fn the_cluster_view_follows_a_crash_and_writes_keys_as_text() {
    let mut agents = cluster(3, &[]);
    let browser = Browser::start(1280, 900).await;
    open_ui(&browser, &agents[0].api).await;

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
            &timeline_has("n2 is down"),
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
    fill(&browser, "#w-key", "ui-test").await;
    fill(&browser, "#w-value", MARKUP).await;
    click(&browser, "#w-set").await;
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
    // A long value is cut in the table, saying how long it is.
    let long = "x".repeat(600);
    assert_eq!(agents[0].call("PUT", "/v1/kv/long", long.as_bytes()).0, 200);
    browser
        .wait_until(
            "the long value to show cut",
            WAIT,
            "const row = document.querySelector('#key-rows tr[data-key=\"long\"]'); \
             return row !== null && row.cells[1].textContent.length < 200 \
               && row.cells[1].textContent.endsWith('(600 chars)');",
        )
        .await;
    browser.screenshot("cluster-key-set").await;

    click(&browser, "#w-delete").await;
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

/// Types `text` into the field `css`, replacing what it held.
async fn fill(browser: &Browser, css: &str, text: &str) {
    let input = browser.client.find(Locator::Css(css)).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

async fn click(browser: &Browser, css: &str) {
    let button = browser.client.find(Locator::Css(css)).await.unwrap();
    button.click().await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn with_an_api_token_the_page_asks_for_it_and_writes_only_with_it() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-token");
    std::fs::create_dir_all(&dir).unwrap();
    let token = dir.join("token");
    std::fs::write(&token, "ui-s3cret\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let agents = cluster(1, &["--api-token-file", token.to_str().unwrap()]);
    let browser = Browser::start(1000, 800).await;
    open_ui(&browser, &agents[0].api).await;
    browser
        .wait_until(
            "the token field to show",
            WAIT,
            "return !document.getElementById('token-label').hidden \
               && document.querySelectorAll('#member-rows tr').length === 1;",
        )
        .await;
    fill(&browser, "#w-key", "guarded").await;
    fill(&browser, "#w-value", "v1").await;
    click(&browser, "#w-set").await;
    browser
        .wait_until(
            "the page to report the refusal",
            WAIT,
            "const r = document.getElementById('w-result'); \
             return r.classList.contains('error') && r.textContent.includes('Bearer');",
        )
        .await;
    assert_eq!(agents[0].call("GET", "/v1/kv/n0/guarded", b"").0, 404);
    fill(&browser, "#w-token", "ui-s3cret").await;
    click(&browser, "#w-set").await;
    browser
        .wait_until(
            "the page to confirm the write",
            WAIT,
            "return document.getElementById('w-result').textContent.startsWith('set guarded');",
        )
        .await;
    let (status, body) = agents[0].call("GET", "/v1/kv/n0/guarded", b"");
    assert_eq!(
        (status, &body["value"]),
        (200, &Value::from("v1")),
        "{body}"
    );
    browser.screenshot("cluster-token-write").await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_thousand_members_are_paged_filtered_and_their_names_shown_as_text() {
    let agents = cluster(1, &[]);
    let browser = Browser::start(1280, 900).await;
    open_ui(&browser, &agents[0].api).await;
    browser
        .wait_until(
            "the page to list n0",
            WAIT,
            "return document.querySelectorAll('#member-rows tr').length === 1;",
        )
        .await;
    // From here the page's member polls get 1,000 members (one named with markup), as from a
    // large cluster; everything else still comes from the agent.
    browser
        .eval(
            "const statuses = ['alive', 'alive', 'alive', 'suspect', 'dead'];
             const fake = Array.from({ length: 1000 }, (_, i) => ({
               name: i === 7 ? '<b id=\"injected\">n7</b>' : 'n' + i,
               addr: '10.0.' + (i >> 8) + '.' + (i & 255) + ':7946',
               status: statuses[i % 5], generation: 1, incarnation: 0, heartbeat: i, phi: 0,
             }));
             const real = window.fetch.bind(window);
             window.fetch = (path, opts) => path === '/v1/members'
               ? Promise.resolve(new Response(JSON.stringify(fake),
                   { headers: { 'content-type': 'application/json' } }))
               : real(path, opts);
             return true;",
        )
        .await;
    let took = browser
        .wait_until(
            "20 pages of 50 rows",
            WAIT,
            "return document.getElementById('page').textContent === '1/20' \
               && document.querySelectorAll('#member-rows tr').length === 50;",
        )
        .await;
    // Problems first: the 200 dead, then the 200 suspect.
    let first = browser
        .eval("return document.querySelector('#member-rows tr').cells[2].textContent;")
        .await;
    assert_eq!(first, "dead");
    let counts = browser
        .eval("return document.getElementById('counts').textContent;")
        .await;
    let counts = counts.as_str().unwrap_or_default();
    assert!(
        counts.contains("1000 members") && counts.contains("200 dead"),
        "{counts}"
    );
    click(&browser, "#next").await;
    browser
        .wait_until(
            "page 2",
            WAIT,
            "return document.getElementById('page').textContent === '2/20';",
        )
        .await;
    fill(&browser, "#filter", "n99").await;
    browser
        .wait_until(
            "the filter to leave n99 and n990-n999",
            WAIT,
            "const names = [...document.querySelectorAll('#member-rows tr')] \
               .map(r => r.dataset.name).sort(); \
             return names.length === 11 && names[0] === 'n99' \
               && document.getElementById('page').textContent === '1/1';",
        )
        .await;
    fill(&browser, "#filter", "injected").await;
    browser
        .wait_until(
            "the member named with markup, as text",
            WAIT,
            "const rows = [...document.querySelectorAll('#member-rows tr')]; \
             return rows.length === 1 && rows[0].cells[0].textContent.startsWith('<b id=') \
               && document.getElementById('injected') === null;",
        )
        .await;
    let shot = browser.screenshot("cluster-thousand-members").await;
    eprintln!(
        "1,000 members drawn {took:?} after the first poll; {}",
        shot.display()
    );
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}

/// A loopback port free for both TCP and UDP (memberlist gossips on both).
fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A `gossiper agent --protocol memberlist` on loopback, joining `join`.
fn memberlist_agent(name: &str, join: Option<std::net::SocketAddr>) -> Agent {
    let bind = format!("127.0.0.1:{}", free_port());
    let api = format!("127.0.0.1:{}", free_port());
    let mut cmd = Command::new(agent_support::BIN);
    cmd.args(["agent", "--protocol", "memberlist", "--name", name])
        .args(["--bind", &bind, "--api", &api])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(j) = join {
        cmd.args(["--join", &j.to_string()]);
    }
    Agent::spawn(name, cmd)
}

#[tokio::test(flavor = "current_thread")]
async fn a_memberlist_agent_serves_the_page_with_its_members_and_user_events() {
    let m0 = memberlist_agent("m0", None);
    let mut m1 = memberlist_agent("m1", Some(m0.gossip));
    let browser = Browser::start(1280, 900).await;
    open_ui(&browser, &m0.api).await;
    browser
        .wait_until(
            "the page to list m0 and m1 alive, without the key and traffic panels",
            WAIT,
            "const rows = [...document.querySelectorAll('#member-rows tr')]; \
             return rows.length === 2 && rows.every(r => r.cells[2].textContent === 'alive') \
               && document.getElementById('keys').hidden \
               && document.getElementById('traffic').hidden;",
        )
        .await;
    let (status, _) = m0.call("POST", "/v1/event/deploy", MARKUP.as_bytes());
    assert_eq!(status, 200);
    browser
        .wait_until(
            "the user event in the timeline, as text",
            WAIT,
            &format!(
                "return [...document.querySelectorAll('#events li')] \
                   .some(li => li.textContent.includes('user event deploy = ' + {markup})) \
                   && document.querySelectorAll('main img').length === 0;",
                markup = Value::from(MARKUP)
            ),
        )
        .await;
    m1.kill9();
    let took = browser
        .wait_until(
            "the page to show m1 failed",
            WAIT,
            &row_shows("m1", "failed"),
        )
        .await;
    browser
        .wait_until(
            "the timeline to show the change",
            WAIT,
            &timeline_has("m1 is failed (was alive)"),
        )
        .await;
    let shot = browser.screenshot("memberlist-m1-failed").await;
    eprintln!(
        "memberlist: m1 shown failed {took:?} after kill -9; {}",
        shot.display()
    );
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
