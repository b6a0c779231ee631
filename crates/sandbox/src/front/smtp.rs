//! The submission front: EHLO, STARTTLS, AUTH (XOAUTH2 / OAUTHBEARER; PLAIN after a client certificate),
//! then Postfix's session.

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::wire::{self, Io};
use super::{Connection, Front, Outcome, Shared};
use crate::DOMAIN;

/// Serves one client connection; the record is written once the client authenticated or left.
pub async fn session(
    stream: TcpStream,
    front: Front,
    shared: &Shared,
    record: &mut Connection,
) -> std::io::Result<()> {
    let mut io = wire::plain(stream);
    wire::send(
        &mut io,
        &format!("220 mail.{DOMAIN} ESMTP MSSante sandbox API LPS\r\n"),
    )
    .await?;
    match super::until_authenticated(io, front, shared, record).await? {
        Some((io, _user, _tag)) => hand_over(io, shared).await,
        None => Ok(()),
    }
}

fn ehlo(front: Front, tls: bool, name: &str) -> String {
    let mut lines = vec![
        format!("mail.{DOMAIN} greets {name}"),
        "PIPELINING".to_owned(),
        "SIZE 26214400".to_owned(),
        "8BITMIME".to_owned(),
        "ENHANCEDSTATUSCODES".to_owned(),
        "DSN".to_owned(),
    ];
    if tls {
        lines.push(format!("AUTH {}", front.mechanisms().join(" ")));
    } else {
        lines.push("STARTTLS".to_owned());
    }
    let last = lines.len() - 1;
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| format!("250{}{l}\r\n", if i == last { ' ' } else { '-' }))
        .collect()
}

pub(super) async fn converse(
    io: &mut Io,
    front: Front,
    shared: &Shared,
    record: &mut Connection,
    tls: bool,
) -> std::io::Result<Outcome> {
    loop {
        let Some(line) = wire::read_line(io).await? else {
            return Ok(Outcome::Closed);
        };
        let (verb, args) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let verb = verb.to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => wire::send(io, &ehlo(front, tls, args.trim())).await?,
            "HELO" => wire::send(io, &format!("250 mail.{DOMAIN}\r\n")).await?,
            "NOOP" | "RSET" => wire::send(io, "250 2.0.0 Ok\r\n").await?,
            "QUIT" => {
                wire::send(io, "221 2.0.0 Bye\r\n").await?;
                return Ok(Outcome::Closed);
            }
            "STARTTLS" if tls => wire::send(io, "503 5.5.1 TLS already active\r\n").await?,
            "STARTTLS" => {
                wire::send(io, "220 2.0.0 Ready to start TLS\r\n").await?;
                return Ok(Outcome::StartTls);
            }
            "AUTH" if !tls => {
                record.before_tls.push("AUTH".into());
                record.mechanism = args.split(' ').next().map(str::to_ascii_uppercase);
                record.refused = Some("credentials sent before STARTTLS".into());
                wire::send(io, "530 5.7.0 Must issue a STARTTLS command first\r\n").await?;
            }
            "AUTH" => {
                if let Some(user) = authenticate(io, front, shared, record, args).await? {
                    return Ok(Outcome::Authenticated {
                        user,
                        tag: String::new(),
                    });
                }
            }
            "MAIL" | "RCPT" | "DATA" | "BDAT" => {
                if !tls {
                    record.before_tls.push(verb.clone());
                }
                if record.refused.is_none() {
                    record.refused = Some(format!("{verb} sent without authenticating"));
                }
                wire::send(io, "530 5.7.0 Authentication required\r\n").await?;
            }
            _ => wire::send(io, "502 5.5.2 Error: command not recognized\r\n").await?,
        }
    }
}

async fn authenticate(
    io: &mut Io,
    front: Front,
    shared: &Shared,
    record: &mut Connection,
    args: &str,
) -> std::io::Result<Option<String>> {
    let mut parts = args.split(' ');
    let mechanism = parts.next().unwrap_or("").to_ascii_uppercase();
    let initial = parts.next().map(str::to_owned);
    record.mechanism = Some(mechanism.clone());
    record.refused = None;
    if !front.mechanisms().contains(&mechanism.as_str()) {
        record.refused = Some(format!(
            "mechanism {mechanism} is not offered on this front ({} expected)",
            front.mechanisms().join(" or ")
        ));
        wire::send(io, "504 5.5.4 Unrecognized authentication type\r\n").await?;
        return Ok(None);
    }
    record.sasl_ir = Some(initial.as_deref().is_some_and(|i| i != "="));
    let response = match initial {
        Some(r) if r != "=" => r,
        _ => {
            wire::send(io, "334 \r\n").await?;
            match wire::read_line(io).await? {
                Some(l) => l,
                None => return Ok(None),
            }
        }
    };
    if response == "*" {
        record.refused = Some("the client cancelled the authentication".into());
        wire::send(io, "501 5.7.0 Authentication aborted\r\n").await?;
        return Ok(None);
    }
    let parsed = if front.is_app() {
        wire::parse_plain(&response).map(|u| (u, None))
    } else {
        wire::parse_bearer(&mechanism, &response).map(|(u, t)| (u, Some(t)))
    };
    let (user, token) = match parsed {
        Ok(x) => x,
        Err(reason) => {
            record.refused = Some(reason.clone());
            wire::send(
                io,
                &format!("535 5.7.8 Authentication failed: {reason}\r\n"),
            )
            .await?;
            return Ok(None);
        }
    };
    if wire::check(front, shared, record, &user, token.as_deref()) {
        return Ok(Some(user.to_ascii_lowercase()));
    }
    let reason = record.refused.clone().unwrap_or_default();
    if !front.is_app() {
        wire::send(io, &format!("334 {}\r\n", wire::oauth_challenge())).await?;
        if wire::read_line(io).await?.is_none() {
            return Ok(None);
        }
    }
    wire::send(
        io,
        &format!("535 5.7.8 Authentication failed: {reason}\r\n"),
    )
    .await?;
    Ok(None)
}

/// Opens the Postfix session (greeting, EHLO), answers the client's AUTH, then relays.
async fn hand_over(mut io: Io, shared: &Shared) -> std::io::Result<()> {
    let ready = async {
        let mut server = wire::connect(shared.backend_smtp).await?;
        let greeting = wire::server_line(&mut server).await?;
        if !greeting.starts_with("220") {
            return Err(std::io::Error::other("the relay did not greet"));
        }
        server
            .get_mut()
            .write_all(format!("EHLO front.{DOMAIN}\r\n").as_bytes())
            .await?;
        loop {
            let line = wire::server_line(&mut server).await?;
            if line.starts_with("250 ") {
                return Ok(server);
            }
            if !line.starts_with("250-") {
                return Err(std::io::Error::other("the relay refused EHLO"));
            }
        }
    }
    .await;
    // the client hears why rather than a closed connection
    let server = match ready {
        Ok(server) => server,
        Err(e) => {
            wire::send(
                &mut io,
                "454 4.7.0 Temporary authentication failure: relay unavailable\r\n",
            )
            .await?;
            return Err(e);
        }
    };
    wire::send(&mut io, "235 2.7.0 Authentication successful\r\n").await?;
    wire::relay(io, server).await
}
