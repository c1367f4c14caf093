//! Headless Chromium for the browser tests, driven over WebDriver: `chromedriver` started on a
//! free loopback port, a `fantoccini` session with a throw-away profile, the browser's console
//! read back through chromedriver's log endpoint, screenshots kept under the target directory.
//! Every wait is bounded; the driver (and the browser with it) is killed when dropped.
// Each test file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

/// The Debian packages the tests need, and how `.ci/run` installs them.
const INSTALL: &str = "`DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver`, \
     as .ci/run does";

/// The browser and the driver binaries; a failure naming the install step when missing.
fn binaries() -> (&'static str, &'static str) {
    let runs = |bin: &str| {
        Command::new(bin)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    assert!(
        runs("chromium"),
        "`chromium` is not on PATH: the browser tests need Debian's headless Chromium ({INSTALL})"
    );
    assert!(
        runs("chromedriver"),
        "`chromedriver` is not on PATH: the browser tests drive Chromium through it ({INSTALL})"
    );
    ("chromium", "chromedriver")
}

/// Where the tests keep their screenshots: `target/ui-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|target| target.join("ui-screenshots"))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots"));
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir
}

/// A headless Chromium session.
pub struct Browser {
    pub client: Client,
    driver: Child,
    profile: PathBuf,
}

impl Browser {
    /// Starts chromedriver and a browser `width` × `height` pixels.
    pub async fn start(width: u32, height: u32) -> Browser {
        let (chromium, chromedriver) = binaries();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // In a process group of its own, so that Drop takes the browsers it started with it.
        let driver = Command::new(chromedriver)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile =
            std::env::temp_dir().join(format!("gossiper-ui-test-{}-{port}", std::process::id()));
        let chromium_path = which(chromium);
        let caps = json!({
            "goog:chromeOptions": {
                "binary": chromium_path,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-extensions",
                    format!("--user-data-dir={}", profile.display()),
                    format!("--window-size={width},{height}"),
                ],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let Value::Object(caps) = caps else {
            unreachable!("a JSON object")
        };
        let mut builder =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        builder.capabilities(caps);
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let browser = Browser {
            client: loop {
                match builder.connect(&url).await {
                    Ok(c) => break c,
                    Err(_) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => panic!("no WebDriver session from chromedriver in 20 s: {e}"),
                }
            },
            driver,
            profile,
        };
        browser
            .client
            .set_window_size(width, height)
            .await
            .expect("window size");
        browser
    }

    /// Evaluates `script` (a function body; `return` its value) in the page.
    pub async fn eval(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Polls `script` every 100 ms until it returns `true`, at most `limit`; returns the time
    /// it took. On a timeout, saves a screenshot named after `what` and fails.
    pub async fn wait_until(&self, what: &str, limit: Duration, script: &str) -> Duration {
        let start = Instant::now();
        loop {
            if self.eval(script).await == Value::Bool(true) {
                return start.elapsed();
            }
            if start.elapsed() > limit {
                let shot = self.screenshot(&format!("timeout-{}", slug(what))).await;
                panic!(
                    "timed out after {limit:?} waiting for {what} (screenshot: {})",
                    shot.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG of the window as `NAME.png` under [`screenshot_dir`]; its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// The browser console's messages at level SEVERE (errors, failed loads) since the last
    /// call.
    pub async fn console_errors(&self) -> Vec<String> {
        let logs = self
            .client
            .issue_cmd(BrowserLog)
            .await
            .expect("chromedriver's browser log");
        logs.as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole group: killing chromedriver alone leaves its Chromium processes running.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// chromedriver's `POST /session/ID/se/log {"type": "browser"}`: the console, drained.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "type": "browser" }).to_string()),
        )
    }
}

/// The absolute path of `bin` on PATH (chromedriver wants one).
fn which(bin: &str) -> String {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(bin))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| bin.to_owned())
}

fn slug(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}
