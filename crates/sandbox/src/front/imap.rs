//! The IMAP front: greeting, CAPABILITY, STARTTLS, AUTHENTICATE (XOAUTH2 / OAUTHBEARER with or without
//! SASL-IR; PLAIN after a client certificate), then Dovecot's session.

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::wire::{self, Io};
use super::{Connection, Front, Outcome, Shared};

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
        &format!(
            "* OK [CAPABILITY {}] MSSante sandbox API LPS ready\r\n",
            capabilities(front, false)
        ),
    )
    .await?;
    match super::until_authenticated(io, front, shared, record).await? {
        Some((io, user, tag)) => hand_over(io, shared, &user, &tag).await,
        None => Ok(()),
    }
}

fn capabilities(front: Front, tls: bool) -> String {
    let mut caps = String::from("IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE");
    if tls {
        for m in front.mechanisms() {
            caps.push_str(" AUTH=");
            caps.push_str(m);
        }
    } else {
        caps.push_str(" STARTTLS LOGINDISABLED");
    }
    caps
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
        let mut words = line.splitn(3, ' ');
        let tag = words.next().unwrap_or("*").to_owned();
        let command = words.next().unwrap_or("").to_ascii_uppercase();
        let args = words.next().unwrap_or("");
        match command.as_str() {
            "CAPABILITY" => {
                let caps = capabilities(front, tls);
                wire::send(
                    io,
                    &format!("* CAPABILITY {caps}\r\n{tag} OK CAPABILITY completed\r\n"),
                )
                .await?;
            }
            "NOOP" => wire::send(io, &format!("{tag} OK NOOP completed\r\n")).await?,
            "ID" => {
                wire::send(
                    io,
                    &format!("* ID (\"name\" \"mss sandbox\")\r\n{tag} OK ID completed\r\n"),
                )
                .await?
            }
            "LOGOUT" => {
                wire::send(
                    io,
                    &format!("* BYE Logging out\r\n{tag} OK LOGOUT completed\r\n"),
                )
                .await?;
                return Ok(Outcome::Closed);
            }
            "STARTTLS" if tls => {
                wire::send(io, &format!("{tag} BAD TLS is already active\r\n")).await?
            }
            "STARTTLS" => {
                wire::send(io, &format!("{tag} OK Begin TLS negotiation now\r\n")).await?;
                return Ok(Outcome::StartTls);
            }
            "LOGIN" => {
                record.mechanism.get_or_insert_with(|| "LOGIN".into());
                if !tls {
                    record.before_tls.push("LOGIN".into());
                }
                record.refused = Some(
                    "LOGIN (a password) is not an API LPS authentication: use AUTHENTICATE".into(),
                );
                wire::send(io, &format!("{tag} NO [PRIVACYREQUIRED] LOGIN is disabled: use AUTHENTICATE after STARTTLS\r\n")).await?;
            }
            "AUTHENTICATE" if !tls => {
                record.before_tls.push("AUTHENTICATE".into());
                record.mechanism = args.split(' ').next().map(str::to_ascii_uppercase);
                record.refused = Some("credentials sent before STARTTLS".into());
                wire::send(io, &format!("{tag} NO [PRIVACYREQUIRED] STARTTLS first: no authentication before TLS\r\n")).await?;
            }
            "AUTHENTICATE" => {
                if let Some(user) = authenticate(io, front, shared, record, &tag, args).await? {
                    return Ok(Outcome::Authenticated { user, tag });
                }
            }
            "" => wire::send(io, "* BAD empty command\r\n").await?,
            _ => {
                wire::send(
                    io,
                    &format!("{tag} BAD {command} is not allowed before authentication\r\n"),
                )
                .await?;
            }
        }
    }
}

/// One AUTHENTICATE exchange; the mailbox when it succeeded (the client's OK is sent after Dovecot's).
async fn authenticate(
    io: &mut Io,
    front: Front,
    shared: &Shared,
    record: &mut Connection,
    tag: &str,
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
        wire::send(
            io,
            &format!("{tag} NO [CANNOT] mechanism {mechanism} not offered here\r\n"),
        )
        .await?;
        return Ok(None);
    }
    record.sasl_ir = Some(initial.is_some());
    let response = match initial {
        Some(r) => r,
        None => {
            wire::send(io, "+ \r\n").await?;
            match wire::read_line(io).await? {
                Some(l) => l,
                None => return Ok(None),
            }
        }
    };
    if response == "*" {
        record.refused = Some("the client cancelled the authentication".into());
        wire::send(io, &format!("{tag} BAD authentication cancelled\r\n")).await?;
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
            wire::send(io, &format!("{tag} NO [AUTHENTICATIONFAILED] {reason}\r\n")).await?;
            return Ok(None);
        }
    };
    if wire::check(front, shared, record, &user, token.as_deref()) {
        return Ok(Some(user.to_ascii_lowercase()));
    }
    let reason = record.refused.clone().unwrap_or_default();
    if !front.is_app() {
        // RFC 7628: the error as a challenge, the client answers with an empty response
        wire::send(io, &format!("+ {}\r\n", wire::oauth_challenge())).await?;
        if wire::read_line(io).await?.is_none() {
            return Ok(None);
        }
    }
    wire::send(io, &format!("{tag} NO [AUTHENTICATIONFAILED] {reason}\r\n")).await?;
    Ok(None)
}

/// Logs into Dovecot as the mailbox, answers the client's AUTHENTICATE (its `tag`) with Dovecot's
/// capabilities, then relays.
async fn hand_over(mut io: Io, shared: &Shared, user: &str, tag: &str) -> std::io::Result<()> {
    let reached = async {
        let mut server = wire::connect(shared.backend_imap).await?;
        wire::server_line(&mut server).await?;
        Ok::<_, std::io::Error>(server)
    }
    .await;
    // the client hears why rather than a closed connection
    let mut server = match reached {
        Ok(server) => server,
        Err(e) => {
            wire::send(
                &mut io,
                &format!("{tag} NO [UNAVAILABLE] the mail store is not available\r\n"),
            )
            .await?;
            return Err(e);
        }
    };
    server
        .get_mut()
        .write_all(
            format!(
                "s LOGIN {} {}\r\n",
                quote(user),
                quote(&shared.backend_secret)
            )
            .as_bytes(),
        )
        .await?;
    loop {
        let line = wire::server_line(&mut server).await?;
        if let Some(rest) = line.strip_prefix("s ") {
            if rest.starts_with("OK") {
                wire::send(&mut io, &format!("{tag} {rest}\r\n")).await?;
                return wire::relay(io, server).await;
            }
            wire::send(
                &mut io,
                &format!("{tag} NO [UNAVAILABLE] the mail store refused the session\r\n"),
            )
            .await?;
            return Err(std::io::Error::other("the mail store refused the session"));
        }
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
