//! Email over SMTP with lettre: STARTTLS or implicit TLS with certificate verification on
//! (rustls, webpki roots); a multipart message with plain-text and HTML bodies.

use super::message::{Message, escape_html};
use super::outbound::{Attempt, Outcome};
use super::policy::{SmtpSecurity, SmtpSettings};
use lettre::message::MultiPart;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{SmtpTransport, Transport};
use std::net::{IpAddr, ToSocketAddrs};
use std::time::Duration;

/// The email for `msg`.
pub fn build(smtp: &SmtpSettings, to: &str, msg: &Message) -> Result<lettre::Message, String> {
    let from = smtp
        .from
        .parse()
        .map_err(|e| format!("the SMTP From address is not valid ({e})"))?;
    let to = to
        .parse()
        .map_err(|e| format!("the notification email is not valid ({e})"))?;
    let content = msg.content();
    let html = format!(
        "<!doctype html><html><body><h2>{}</h2><p>{}</p></body></html>",
        escape_html(&msg.title),
        escape_html(&content)
    );
    lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(msg.title.clone())
        .multipart(MultiPart::alternative_plain_html(content, html))
        .map_err(|e| format!("cannot build the email: {e}"))
}

/// True when every address of `host` is a loopback address.
fn is_loopback(host: &str, port: u16) -> bool {
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
        return ip.is_loopback();
    }
    match (host, port).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}

fn transport(smtp: &SmtpSettings, timeout: Duration) -> Result<SmtpTransport, String> {
    let builder = if smtp.allow_plaintext_loopback && is_loopback(&smtp.host, smtp.port) {
        SmtpTransport::builder_dangerous(smtp.host.as_str())
    } else {
        match smtp.security {
            SmtpSecurity::Starttls => SmtpTransport::starttls_relay(&smtp.host),
            SmtpSecurity::Implicit => SmtpTransport::relay(&smtp.host),
        }
        .map_err(|e| format!("cannot set up TLS for {}: {e}", smtp.host))?
    };
    let mut builder = builder.port(smtp.port).timeout(Some(timeout));
    if !smtp.username.is_empty() {
        builder = builder.credentials(Credentials::new(
            smtp.username.clone(),
            smtp.password.expose().to_string(),
        ));
    }
    Ok(builder.build())
}

/// Sends once.
pub fn send(smtp: &SmtpSettings, to: &str, msg: &Message, timeout: Duration) -> Attempt {
    let target = format!("{}:{}", smtp.host, smtp.port);
    let email = match build(smtp, to, msg) {
        Ok(m) => m,
        Err(reason) => return Attempt::failed(target, Outcome::Final, reason),
    };
    let transport = match transport(smtp, timeout) {
        Ok(t) => t,
        Err(reason) => return Attempt::failed(target, Outcome::Final, reason),
    };
    match transport.send(&email) {
        Ok(resp) => Attempt {
            target,
            outcome: Outcome::Sent,
            status: Some(u16::from(resp.code())),
            reason: format!("SMTP {}", resp.code()),
            answer: resp.first_line().map(str::to_string),
            retry_after: None,
        },
        Err(e) => {
            // 4xx replies, timeouts and dropped connections may pass; 5xx replies and TLS
            // failures will not.
            let outcome = if e.is_permanent() || e.is_tls() || e.is_client() {
                Outcome::Final
            } else {
                Outcome::Transient
            };
            let mut a = Attempt::failed(target, outcome, format!("SMTP: {e}"));
            a.status = e.status().map(u16::from);
            a
        }
    }
}
