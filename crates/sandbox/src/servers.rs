//! The real servers behind the fronts, from the sandbox directory only: Dovecot (the mail store: IMAP on a
//! loopback port only the fronts use, LMTP delivery into `DIR/mail`) and Postfix (the relay the submission
//! fronts hand authenticated sessions to: it delivers the sandbox's domains through LMTP, refuses the
//! others, and copies every message to the journal mailbox the report reads).
//!
//! Dovecot runs unprivileged when started by an ordinary user. Postfix needs root (its `postfix` account and
//! `postdrop` group, made by the Debian package): started otherwise, the sandbox says so.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{DOMAIN, Error, Layout, PATIENT_DOMAIN, RESPONDER_DOMAIN, Result};

const INSTALL: &str =
    "apt-get install dovecot-imapd dovecot-lmtpd postfix (or scripts/install-deps.sh)";

/// The internal ports (loopback).
#[derive(Debug, Clone, Copy)]
pub struct Internal {
    /// Dovecot IMAP, the fronts' backend.
    pub imap: u16,
    /// Dovecot LMTP, Postfix's delivery.
    pub lmtp: u16,
    /// Postfix SMTP, the submission fronts' backend.
    pub smtp: u16,
}

/// The running servers.
#[derive(Debug)]
pub struct Servers {
    children: Vec<Child>,
    postfix_conf: PathBuf,
}

/// Checks that the programs are installed and that Postfix can run.
pub fn check_installed() -> Result<()> {
    for (program, path) in [
        ("dovecot", "/usr/sbin/dovecot"),
        ("dovecot-lmtpd", "/usr/lib/dovecot/lmtp"),
        ("postfix", "/usr/sbin/postfix"),
    ] {
        if !Path::new(path).exists() {
            return Err(Error::Missing {
                program,
                install: INSTALL,
            });
        }
    }
    if !rustix::process::geteuid().is_root() {
        return Err(Error::Start(
            "Postfix runs only as root (it needs its `postfix` account and `postdrop` group): run `mss sandbox start` as root, e.g. in the CI container or with sudo".into(),
        ));
    }
    Ok(())
}

/// Writes the configurations and starts both servers; returns once every internal port answers.
pub fn start(layout: &Layout, ports: Internal, backend_secret: &str) -> Result<Servers> {
    let dovecot_dir = layout.path("dovecot");
    for d in ["dovecot/run", "dovecot/state", "mail"] {
        let p = layout.path(d);
        std::fs::create_dir_all(&p).map_err(Error::io(format!("creating {}", p.display())))?;
    }
    // the mail store's files belong to `nobody`, Dovecot's unprivileged mail user under root
    let _ = Command::new("chown")
        .args(["nobody:nogroup"])
        .arg(layout.path("mail"))
        .status();
    let conf = dovecot_dir.join("dovecot.conf");
    write(&conf, &dovecot_conf(layout, ports, backend_secret))?;
    // it holds the fronts' secret to the store: root only (Dovecot's master reads it as root)
    std::fs::set_permissions(&conf, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(Error::io(format!("protecting {}", conf.display())))?;
    let pf = layout.path("postfix");
    for d in ["postfix/queue", "postfix/data"] {
        let p = layout.path(d);
        std::fs::create_dir_all(&p).map_err(Error::io(format!("creating {}", p.display())))?;
    }
    let _ = Command::new("chown")
        .arg("postfix")
        .arg(pf.join("data"))
        .status();
    write(&pf.join("main.cf"), &postfix_main(layout, ports))?;
    write(&pf.join("master.cf"), &postfix_master(ports)?)?;

    let mut servers = Servers {
        children: Vec::new(),
        postfix_conf: pf.clone(),
    };
    let log = |name: &str| -> Result<Stdio> {
        let p = layout.path(name);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map(Stdio::from)
            .map_err(Error::io(format!("opening {}", p.display())))
    };
    servers.children.push(
        Command::new("dovecot")
            .arg("-F")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log("dovecot/stderr.log")?)
            .stderr(log("dovecot/stderr.log")?)
            .spawn()
            .map_err(Error::io("starting dovecot"))?,
    );
    let postfix = |args: &[&str]| {
        Command::new("postfix")
            .arg("-c")
            .arg(&pf)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log("postfix/stderr.log")?)
            .stderr(log("postfix/stderr.log")?)
            .status()
            .map_err(Error::io("running postfix"))
    };
    postfix(&["set-permissions"])?;
    postfix(&["check"])?;
    servers.children.push(
        Command::new("postfix")
            .arg("-c")
            .arg(&pf)
            .arg("start-fg")
            .stdin(Stdio::null())
            .stdout(log("postfix/stderr.log")?)
            .stderr(log("postfix/stderr.log")?)
            .spawn()
            .map_err(Error::io("starting postfix"))?,
    );
    if let Err(e) = wait_ready(layout, ports, &mut servers) {
        servers.stop();
        return Err(e);
    }
    Ok(servers)
}

/// Whether the server on `port` greets as it should (`* OK` for IMAP, `220` for LMTP and SMTP): an open
/// port alone could be another program's, or a probe connected to itself.
fn greets(port: u16, greeting: &str) -> bool {
    use std::io::BufRead;
    let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    if stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .is_err()
    {
        return false;
    }
    let mut line = String::new();
    std::io::BufReader::new(stream)
        .read_line(&mut line)
        .is_ok_and(|_| line.starts_with(greeting))
}

fn wait_ready(layout: &Layout, ports: Internal, servers: &mut Servers) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    for (port, greeting) in [
        (ports.imap, "* OK"),
        (ports.lmtp, "220"),
        (ports.smtp, "220"),
    ] {
        loop {
            if greets(port, greeting) {
                break;
            }
            for c in &mut servers.children {
                if let Ok(Some(status)) = c.try_wait() {
                    return Err(Error::Start(format!(
                        "a server exited ({status}); see {}/dovecot/ and {}/postfix/ logs",
                        layout.dir.display(),
                        layout.dir.display()
                    )));
                }
            }
            if Instant::now() > deadline {
                return Err(Error::Start(format!(
                    "port {port} did not answer within 30 s; see the logs in {}",
                    layout.dir.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
}

impl Servers {
    /// Stops both servers and waits for them.
    pub fn stop(mut self) {
        let _ = Command::new("postfix")
            .arg("-c")
            .arg(&self.postfix_conf)
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        for c in &mut self.children {
            if let Ok(pid) = i32::try_from(c.id())
                && let Some(pid) = rustix::process::Pid::from_raw(pid)
            {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
        }
        for c in &mut self.children {
            let _ = c.wait();
        }
    }
}

/// Stops what a background process `pid` that died without stopping left running: its process group
/// (Dovecot and its children) and Postfix, whose master makes a session of its own.
pub fn stop_leftovers(layout: &Layout, pid: rustix::process::Pid) {
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    // a killed Dovecot may stay a zombie, which its pid file would still show as running
    let _ = std::fs::remove_file(layout.path("dovecot/run/master.pid"));
    let pf = layout.path("postfix");
    if pf.join("main.cf").exists() {
        let _ = Command::new("postfix")
            .arg("-c")
            .arg(&pf)
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(Error::io(format!("writing {}", path.display())))
}

fn dovecot_conf(layout: &Layout, p: Internal, secret: &str) -> String {
    let d = layout.dir.display();
    let instance = format!("mss-sandbox-{}", p.imap);
    format!(
        r#"# the sandbox's mail store: IMAP for the fronts only (loopback, a secret of this run), LMTP for Postfix
protocols = imap lmtp
listen = 127.0.0.1
base_dir = {d}/dovecot/run
state_dir = {d}/dovecot/state
log_path = {d}/dovecot/dovecot.log
instance_name = {instance}
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
hostname = mail.{DOMAIN}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:{d}/mail/%Lu
first_valid_uid = 0
passdb {{
  driver = static
  args = password={secret}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={d}/mail/%Lu allow_all_users=yes
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp}
  }}
}}
protocol lmtp {{
  auth_username_format = %Lu
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"#,
        imap = p.imap,
        lmtp = p.lmtp,
    )
}

fn postfix_main(layout: &Layout, p: Internal) -> String {
    let d = layout.dir.display();
    let journal = Layout::journal_address();
    format!(
        r#"# the sandbox's relay: the submission fronts hand it authenticated sessions on a loopback port
compatibility_level = 3.6
queue_directory = {d}/postfix/queue
data_directory = {d}/postfix/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = {d}
maillog_file = {d}/postfix/postfix.log
myhostname = mail.{DOMAIN}
mydomain = {DOMAIN}
myorigin = $mydomain
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost =
alias_maps =
alias_database =
local_recipient_maps =
biff = no
append_dot_mydomain = no
smtputf8_enable = no
message_size_limit = 26214400
# the sandbox's domains are delivered into its mail store; every other domain is refused at RCPT
virtual_mailbox_domains = {DOMAIN}, {RESPONDER_DOMAIN}, {PATIENT_DOMAIN}, journal.invalid
virtual_transport = lmtp:inet:127.0.0.1:{lmtp}
lmtp_destination_concurrency_limit = 4
smtpd_relay_restrictions = reject_unauth_destination
# every message is copied to the journal mailbox, which the report checks
always_bcc = {journal}
smtpd_banner = $myhostname ESMTP
"#,
        lmtp = p.lmtp,
    )
}

fn postfix_master(p: Internal) -> Result<String> {
    let stock = std::fs::read_to_string("/etc/postfix/master.cf")
        .map_err(Error::io("reading /etc/postfix/master.cf"))?;
    // the stock services without chroot and without their inet listeners, plus our loopback smtpd
    let mut out = format!("127.0.0.1:{} inet n - n - - smtpd\n", p.smtp);
    let mut keep = false;
    for line in stock.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if !line.starts_with([' ', '\t']) {
            let f: Vec<&str> = line.split_whitespace().collect();
            keep = f.len() >= 8
                && f[1] != "inet"
                && !matches!(
                    f[0],
                    "maildrop" | "uucp" | "ifmail" | "bsmtp" | "scalemail-backend" | "mailman"
                );
            if keep {
                let mut f = f.clone();
                f[4] = "n";
                out.push_str(&f.join(" "));
                out.push('\n');
            }
        } else if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}
