//! `--html`, for both simulators: one self-contained HTML page (inline CSS and SVG, no script,
//! nothing fetched) holding the configuration and seed, the measures table and the charts. The
//! commands say what goes in the page; how a page is laid out and escaped is written once, here.

use std::path::{Path, PathBuf};

use clap::Args;
use gossiper_sim::{Stat, metrics::fmt_num};
use serde::Serialize;
use serde_json::Value;

use crate::CliError;

/// The `--html` flag both simulators flatten.
#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct HtmlArgs {
    /// Write a self-contained HTML report (configuration and seed, measures, charts; with
    /// simulate-cluster also a heat map of who holds whom alive, suspect or dead over time): to
    /// this .html file, or to stdout with `-` in place of the text report.
    #[arg(long, value_name = "FILE.html|-")]
    #[serde(skip)]
    pub html: Option<PathBuf>,
}

impl HtmlArgs {
    /// Refuses a target that is neither `-` nor an `.html`/`.htm` file, and `-` together with
    /// `--plot -` (both would claim stdout). A usage error.
    pub fn check(&self, plot: Option<&Path>) -> Result<(), CliError> {
        let Some(path) = &self.html else {
            return Ok(());
        };
        if path.as_os_str() == "-" {
            if plot.is_some_and(|p| p.as_os_str() == "-") {
                return Err(CliError::usage(
                    "--html - and --plot - both write to stdout: give one of them a file",
                ));
            }
            return Ok(());
        }
        match path.extension().and_then(|e| e.to_str()) {
            Some("html" | "htm") => Ok(()),
            _ => Err(CliError::usage(format!(
                "--html writes a web page: {} must end in .html, or be -",
                path.display()
            ))),
        }
    }

    /// Whether the page goes to stdout (in place of the report).
    pub fn to_stdout(&self) -> bool {
        self.html.as_ref().is_some_and(|p| p.as_os_str() == "-")
    }

    /// Writes `page` where `--html` says, when it names a file; `-` is the caller's to print.
    pub fn write_file(&self, page: &str) -> Result<(), CliError> {
        match &self.html {
            Some(path) if path.as_os_str() != "-" => std::fs::write(path, page)
                .map_err(|e| CliError::failure(format!("cannot write {}: {e}", path.display()))),
            _ => Ok(()),
        }
    }
}

/// Text made safe for HTML, in content and in quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
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

/// A report page, section by section.
pub(crate) struct Page {
    body: String,
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;color:#1f2328;margin:1rem auto;\
max-width:1000px;padding:0 1rem}h1{font-size:1.3rem}h2{font-size:1.1rem;margin-top:1.6rem}\
table{border-collapse:collapse;font-variant-numeric:tabular-nums}\
th,td{padding:.2rem .6rem;border-bottom:1px solid #d1d9e0;text-align:left}\
td.n{text-align:right}th{background:#f6f8fa}code,pre{font-size:.9em;background:#f6f8fa}\
pre{padding:.5rem;overflow-x:auto;white-space:pre-wrap}figure{margin:0}\
figure svg{max-width:100%;height:auto}.scroll{overflow-x:auto}\
.config{columns:13rem auto;margin:0}.config div{display:flex;gap:.5rem;\
break-inside:avoid;border-bottom:1px solid #eaeef2;padding:.1rem 0}.config dt{font-weight:600}\
.config dd{margin:0;word-break:break-all}.legend{display:flex;flex-wrap:wrap;gap:.3rem 1.2rem;list-style:none;padding:0}\
.legend span{display:inline-block;width:1.4em;height:.9em;vertical-align:middle;\
margin-right:.3rem;border:1px solid #888}.muted{color:#59636e}";

impl Page {
    /// A page titled `title`, its first line `summary`.
    pub(crate) fn new(title: &str, summary: &str) -> Page {
        Page {
            body: format!("<h1>{}</h1>\n<p>{}</p>\n", escape(title), escape(summary)),
        }
    }

    /// A heading.
    pub(crate) fn heading(&mut self, text: &str) {
        self.body.push_str(&format!("<h2>{}</h2>\n", escape(text)));
    }

    /// A paragraph of text.
    pub(crate) fn text(&mut self, text: &str) {
        self.body.push_str(&format!("<p>{}</p>\n", escape(text)));
    }

    /// Preformatted text (a command line, a formula).
    pub(crate) fn code(&mut self, text: &str) {
        self.body
            .push_str(&format!("<pre><code>{}</code></pre>\n", escape(text)));
    }

    /// The configuration: every argument as parsed (`args`, a JSON object) and the other
    /// fields of `head` (those `args` does not hold already), one entry each.
    pub(crate) fn config(&mut self, head: &serde_json::Map<String, Value>) {
        let mut rows = String::new();
        let args = head.get("args").and_then(Value::as_object);
        let mut push = |name: &str, v: &Value| {
            let shown = match v {
                Value::String(s) => s.clone(),
                Value::Null => "–".into(),
                other => other.to_string(),
            };
            rows.push_str(&format!(
                "<div><dt>{}</dt><dd>{}</dd></div>\n",
                escape(name),
                escape(&shown)
            ));
        };
        for (name, v) in head {
            match v {
                Value::Object(args) => args.iter().for_each(|(k, v)| push(k, v)),
                _ if args.is_some_and(|a| a.contains_key(name)) => {}
                v => push(name, v),
            }
        }
        self.body
            .push_str(&format!("<dl class=\"config\">\n{rows}</dl>\n"));
    }

    /// The measures table: name, mean, std, min, max (blank: not measured).
    pub(crate) fn measures<'a>(&mut self, measures: impl IntoIterator<Item = (&'a str, Stat)>) {
        let mut rows = String::new();
        for (name, st) in measures {
            let cell = |x: f64| {
                if x.is_nan() {
                    String::new()
                } else {
                    escape(&fmt_num(x))
                }
            };
            rows.push_str(&format!(
                "<tr><th scope=\"row\">{}</th><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td></tr>\n",
                escape(name),
                cell(st.mean),
                cell(st.std),
                cell(st.min),
                cell(st.max)
            ));
        }
        self.body.push_str(&format!(
            "<table class=\"measures\">\n<thead><tr><th>measure</th><th>mean</th><th>std</th>\
             <th>min</th><th>max</th></tr></thead>\n<tbody>\n{rows}</tbody></table>\n"
        ));
    }

    /// A figure: an SVG drawn by this program (trusted markup) and its caption (text).
    pub(crate) fn figure(&mut self, svg: &str, caption: &str) {
        self.body.push_str(&format!(
            "<figure><div class=\"scroll\">{svg}</div><figcaption class=\"muted\">{}\
             </figcaption></figure>\n",
            escape(caption)
        ));
    }

    /// Markup this program built (already escaped where it holds text).
    pub(crate) fn raw(&mut self, html: &str) {
        self.body.push_str(html);
    }

    /// The whole document.
    pub(crate) fn finish(self, title: &str) -> String {
        format!(
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
             style-src 'unsafe-inline'; img-src data:\">\n<title>{}</title>\n\
             <style>{STYLE}</style>\n</head>\n<body>\n{}</body>\n</html>\n",
            escape(title),
            self.body
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_everywhere_it_goes() {
        assert_eq!(
            escape(r#"<img src=x onerror="a('b')">&"#),
            "&lt;img src=x onerror=&quot;a(&#39;b&#39;)&quot;&gt;&amp;"
        );
        let mut p = Page::new("t<", "s>");
        p.heading("<h>");
        p.measures([("<m>", Stat::of([1.0, 3.0]))]);
        let mut head = serde_json::Map::new();
        head.insert("seed".into(), Value::from(7));
        head.insert("args".into(), serde_json::json!({ "topology": "<script>" }));
        p.config(&head);
        let page = p.finish("<title>");
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.contains("<m>") && !page.contains("<h>"), "{page}");
        assert!(
            page.contains("&lt;script&gt;") && page.contains(">7<"),
            "{page}"
        );
        // A field the arguments hold already is listed once.
        head.insert("args".into(), serde_json::json!({ "seed": 7 }));
        let mut p = Page::new("t", "s");
        p.config(&head);
        assert_eq!(p.finish("t").matches("<dt>seed</dt>").count(), 1);
        let mean = format!("<td class=\"n\">{}</td>", fmt_num(2.0));
        assert!(page.contains(&mean), "the mean: {page}");
    }

    #[test]
    fn targets_are_html_files_or_stdout_but_not_stdout_twice() {
        let h = |p: &str| HtmlArgs {
            html: Some(PathBuf::from(p)),
        };
        assert!(h("r.html").check(None).is_ok());
        assert!(h("r.htm").check(Some(Path::new("-"))).is_ok());
        assert!(h("r.svg").check(None).is_err());
        assert!(h("-").check(Some(Path::new("p.svg"))).is_ok());
        assert!(h("-").check(Some(Path::new("-"))).is_err());
        assert!(h("-").to_stdout() && !h("r.html").to_stdout());
        assert!(HtmlArgs::default().check(Some(Path::new("-"))).is_ok());
    }
}
