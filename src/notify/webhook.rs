//! A webhook: the notification POSTed as JSON to an HTTP(S) URL, as teal's
//! own object or as Slack's message. The URL is a secret: it is used for
//! the request and nowhere else; errors name the channel by its label.

use super::message::Notification;
use super::{slack, Channel};
use crate::config::{Secret, WebhookFormat};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

/// A webhook channel.
pub struct Webhook {
    url: Secret,
    label: String,
    format: WebhookFormat,
    client: Result<Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>, String>,
}

impl Webhook {
    /// POST to `url` (named `label` in messages) in `format`.
    pub fn new(url: Secret, label: &str, format: WebhookFormat) -> Webhook {
        let client = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map(|b| {
                let https = b.https_or_http().enable_http1().build();
                Client::builder(TokioExecutor::new()).build(https)
            })
            .map_err(|e| format!("no TLS root certificates: {e}"));
        Webhook {
            url,
            label: label.to_string(),
            format,
            client,
        }
    }

    /// The body for `n`.
    pub fn body(&self, n: &Notification) -> serde_json::Value {
        match self.format {
            WebhookFormat::Json => serde_json::to_value(n).expect("a notification serializes"),
            WebhookFormat::Slack => slack::body(n),
        }
    }
}

#[async_trait::async_trait]
impl Channel for Webhook {
    fn describe(&self) -> String {
        format!("{} webhook {}", self.format.name(), self.label)
    }

    async fn send(&self, n: &Notification) -> Result<(), String> {
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let body = serde_json::to_vec(&self.body(n)).expect("json");
        let request = hyper::Request::post(self.url.expose())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(
                hyper::header::USER_AGENT,
                concat!("teal/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| "the URL does not make a request".to_string())?;
        let answer = client.request(request).await.map_err(|e| {
            // The error's chain says why (refused, no TLS, reset); the URL is
            // cut out should a layer ever name it.
            let mut why = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                why = format!("{why}: {s}");
                source = s.source();
            }
            why.replace(self.url.expose(), "<url>")
        })?;
        let status = answer.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {status}"))
        }
    }
}
