//! `[http]` (formerly `[metrics]`): where the runner serves `/metrics`, its status page and
//! probes, and the token they want.
//!
//! ```toml
//! [http]
//! listen = "127.0.0.1:9464"
//! token_env = "FLIGHTLINE_HTTP_TOKEN"   # or token_file = "/run/secrets/http-token"
//! ```

use std::net::SocketAddr;

use toml::Spanned;

use super::check::Checker;
use super::model::HttpSettings;
use super::raw::{RawFile, RawHttp};
use super::server::{Env, set_variable};
use crate::http::AccessToken;

impl Checker<'_> {
    /// `[http]`, or `[metrics]` where an older file says so; both at once is refused.
    pub(super) fn http(&mut self, raw: &RawFile, env: Env<'_>) -> Option<HttpSettings> {
        let section = match (&raw.http, &raw.metrics) {
            (Some(http), Some(metrics)) => {
                self.at(
                    metrics.span(),
                    "[metrics] is the old name of [http]: keep only [http], with `listen` and \
                     the token settings",
                );
                http
            }
            (Some(section), None) | (None, Some(section)) => section,
            (None, None) => return None,
        };
        let section: &RawHttp = section.get_ref();
        let listen = self.value(&section.listen, |text| {
            text.parse::<SocketAddr>()
                .map_err(|_| "not a listen address; write it like 127.0.0.1:9464".to_string())
        });
        let token = self.http_token(section, env);
        Some(HttpSettings { listen: listen?, token: token? })
    }

    /// The token, read now: `Some(None)` when none is configured, `None` after an issue.
    fn http_token(&mut self, raw: &RawHttp, env: Env<'_>) -> Option<Option<AccessToken>> {
        if let Some(inline) = &raw.token {
            self.issue(
                Some(inline.span()),
                None,
                "a token is never written in the job file: name the environment variable that \
                 holds it, token_env = \"FLIGHTLINE_HTTP_TOKEN\", or a file, token_file = \
                 \"/run/secrets/http-token\""
                    .into(),
            );
            return None;
        }
        let read = match (&raw.token_env, &raw.token_file) {
            (None, None) => return Some(None),
            (Some(var), Some(_)) => {
                self.at(var.span(), "give either token_env or token_file, not both");
                return None;
            }
            // The name is checked and the variable known to be set; its value is the token.
            (Some(var), None) => self.value(var, |name| {
                set_variable(name, env).map(|name| env(&name).unwrap_or_default())
            }),
            (None, Some(path)) => self.value(&path_text(path), |path| {
                std::fs::read_to_string(path)
                    .map_err(|err| format!("cannot read the token file {path}: {err}"))
            }),
        }?;
        match AccessToken::new(&read) {
            Some(token) => Some(Some(token)),
            None => {
                let span = raw.token_env.as_ref().map(|v| v.span());
                let span = span.or_else(|| raw.token_file.as_ref().map(|f| f.span()));
                self.issue(
                    span,
                    None,
                    "the token is empty: a blank token would let anyone in".into(),
                );
                None
            }
        }
    }
}

fn path_text(path: &Spanned<std::path::PathBuf>) -> Spanned<String> {
    Spanned::new(path.span(), path.get_ref().display().to_string())
}
