//! Authenticating a control connection: PROTOCOLINFO, then SAFECOOKIE (preferred), COOKIE,
//! `HashedControlPassword` or no authentication (control-spec §3.5, §3.21, §3.24).
//!
//! Invariants:
//! * Secrets (cookie bytes, password, the SAFECOOKIE client hash) live in [`Zeroizing`] buffers
//!   and are never shown: the commands carrying them are logged as `AUTHENTICATE <…>`.
//! * With SAFECOOKIE, tor's server hash is verified *before* we answer: a control port that
//!   does not know the cookie we read (i.e. a different tor) learns nothing and is refused.
//! * A method is only tried if tor offers it in PROTOCOLINFO; otherwise the error names the
//!   methods tor does offer.

use super::connection::Control;
use crate::error::ControlError;
use crate::reply::{self, arg_value, parse_args, Arg};
use data_encoding::HEXUPPER;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tracing::debug;
use zeroize::Zeroizing;

const SAFECOOKIE_SERVER_KEY: &[u8] = b"Tor safe cookie authentication server-to-controller hash";
const SAFECOOKIE_CLIENT_KEY: &[u8] = b"Tor safe cookie authentication controller-to-server hash";

/// How to authenticate to a control port.
#[derive(Clone)]
pub enum ControlAuth {
    /// Cookie authentication: SAFECOOKIE when tor offers it, else COOKIE. The cookie file is
    /// `path`, or the one tor names in PROTOCOLINFO when `None`.
    Cookie(Option<PathBuf>),
    /// `HashedControlPassword` authentication.
    Password(String),
    /// No authentication (a control port without any auth; not recommended).
    Null,
}

impl std::fmt::Debug for ControlAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ControlAuth::Cookie(p) => f.debug_tuple("Cookie").field(p).finish(),
            ControlAuth::Password(_) => f.write_str("Password(<hidden>)"),
            ControlAuth::Null => f.write_str("Null"),
        }
    }
}

/// What PROTOCOLINFO told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolInfo {
    pub auth_methods: Vec<String>,
    pub cookie_file: Option<PathBuf>,
    pub tor_version: Option<String>,
}

impl ProtocolInfo {
    fn offers(&self, method: &str) -> bool {
        self.auth_methods.iter().any(|m| m == method)
    }

    fn offered(&self) -> String {
        self.auth_methods.join(",")
    }
}

impl Control {
    /// Connects and authenticates.
    pub async fn connect_authenticated(
        addr: SocketAddr,
        auth: &ControlAuth,
    ) -> Result<Control, ControlError> {
        let mut c = Control::connect(addr).await?;
        c.authenticate(auth).await?;
        Ok(c)
    }

    /// PROTOCOLINFO (allowed once before authentication).
    pub async fn protocol_info(&mut self) -> Result<ProtocolInfo, ControlError> {
        let reply = self.command("PROTOCOLINFO 1").await?;
        let mut info = ProtocolInfo {
            auth_methods: Vec::new(),
            cookie_file: None,
            tor_version: None,
        };
        let mut saw_header = false;
        for line in &reply.lines {
            let args = parse_args(&line.text)?;
            match args.first() {
                Some(Arg::Word(w)) if w == "PROTOCOLINFO" => saw_header = true,
                Some(Arg::Word(w)) if w == "AUTH" => {
                    let methods =
                        arg_value(&args, "METHODS").ok_or_else(|| ControlError::Unexpected {
                            command: "PROTOCOLINFO".into(),
                            detail: "AUTH line without METHODS".into(),
                        })?;
                    info.auth_methods = methods.split(',').map(str::to_string).collect();
                    info.cookie_file = arg_value(&args, "COOKIEFILE").map(PathBuf::from);
                }
                Some(Arg::Word(w)) if w == "VERSION" => {
                    info.tor_version = arg_value(&args, "Tor").map(str::to_string);
                }
                _ => {}
            }
        }
        if !saw_header || info.auth_methods.is_empty() {
            return Err(ControlError::Unexpected {
                command: "PROTOCOLINFO".into(),
                detail: "reply lacks the PROTOCOLINFO or AUTH line".into(),
            });
        }
        Ok(info)
    }

    /// Authenticates: PROTOCOLINFO, then SAFECOOKIE (preferred), COOKIE, password or none.
    pub async fn authenticate(&mut self, auth: &ControlAuth) -> Result<(), ControlError> {
        let info = self.protocol_info().await?;
        match auth {
            ControlAuth::Null => self.authenticate_null(&info).await?,
            ControlAuth::Password(password) => self.authenticate_password(&info, password).await?,
            ControlAuth::Cookie(path) => self.authenticate_cookie(&info, path.as_deref()).await?,
        }
        debug!(addr = %self.addr(), version = ?info.tor_version, "authenticated to tor");
        Ok(())
    }

    async fn authenticate_null(&mut self, info: &ProtocolInfo) -> Result<(), ControlError> {
        if !info.offers("NULL") {
            return Err(ControlError::Auth(format!(
                "tor requires authentication (offers {}); configure a cookie or password",
                info.offered()
            )));
        }
        self.command("AUTHENTICATE").await.map_err(auth_error)?;
        Ok(())
    }

    async fn authenticate_password(
        &mut self,
        info: &ProtocolInfo,
        password: &str,
    ) -> Result<(), ControlError> {
        if !info.offers("HASHEDPASSWORD") {
            return Err(ControlError::Auth(format!(
                "tor does not accept a password (offers {})",
                info.offered()
            )));
        }
        let line = Zeroizing::new(format!("AUTHENTICATE {}", reply::quote(password)?));
        self.command_shown(&line, "AUTHENTICATE <password>")
            .await
            .map_err(auth_error)?;
        Ok(())
    }

    /// SAFECOOKIE if offered, else COOKIE, with the cookie at `path` or where tor says it is.
    async fn authenticate_cookie(
        &mut self,
        info: &ProtocolInfo,
        path: Option<&Path>,
    ) -> Result<(), ControlError> {
        let Some(path) = path.or(info.cookie_file.as_deref()) else {
            return Err(ControlError::Auth(
                "tor did not name a cookie file; is CookieAuthentication 1 set?".into(),
            ));
        };
        let cookie = read_cookie(path).await?;
        if info.offers("SAFECOOKIE") {
            self.safecookie(&cookie).await
        } else if info.offers("COOKIE") {
            let line = format!("AUTHENTICATE {}", HEXUPPER.encode(cookie.as_slice()));
            self.command_shown(&line, "AUTHENTICATE <cookie>")
                .await
                .map_err(auth_error)?;
            Ok(())
        } else {
            Err(ControlError::Auth(format!(
                "tor does not offer cookie authentication (offers {}); set CookieAuthentication 1",
                info.offered()
            )))
        }
    }

    async fn safecookie(&mut self, cookie: &Zeroizing<[u8; 32]>) -> Result<(), ControlError> {
        let mut client_nonce = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut client_nonce);
        let line = format!(
            "AUTHCHALLENGE SAFECOOKIE {}",
            HEXUPPER.encode(&client_nonce)
        );
        let reply = self.command(&line).await.map_err(auth_error)?;
        let (server_hash, server_nonce) = parse_auth_challenge(reply.last_text())?;
        let mac = |key: &[u8]| {
            let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
            m.update(cookie.as_slice());
            m.update(&client_nonce);
            m.update(&server_nonce);
            m
        };
        mac(SAFECOOKIE_SERVER_KEY)
            .verify_slice(&server_hash)
            .map_err(|_| {
                ControlError::Auth(
                    "tor's SAFECOOKIE server hash does not match our cookie: this control port does not belong to the tor whose cookie file we read".into(),
                )
            })?;
        let client_hash = mac(SAFECOOKIE_CLIENT_KEY).finalize().into_bytes();
        let line = format!("AUTHENTICATE {}", HEXUPPER.encode(&client_hash));
        self.command_shown(&line, "AUTHENTICATE <safecookie>")
            .await
            .map_err(auth_error)?;
        Ok(())
    }
}

/// Reads `AUTHCHALLENGE SERVERHASH=<hex> SERVERNONCE=<hex>`: the server hash and nonce.
fn parse_auth_challenge(text: &str) -> Result<([u8; 32], [u8; 32]), ControlError> {
    let args = parse_args(text)?;
    let unexpected = |detail: &str| ControlError::Unexpected {
        command: "AUTHCHALLENGE".into(),
        detail: detail.to_string(),
    };
    if args.first() != Some(&Arg::Word("AUTHCHALLENGE".into())) {
        return Err(unexpected("reply is not an AUTHCHALLENGE line"));
    }
    let decode32 = |key: &str| -> Result<[u8; 32], ControlError> {
        let hex = arg_value(&args, key).ok_or_else(|| unexpected("missing field"))?;
        let bytes = HEXUPPER
            .decode(hex.to_ascii_uppercase().as_bytes())
            .map_err(|_| unexpected("field is not hex"))?;
        bytes
            .try_into()
            .map_err(|_| unexpected("field is not 32 bytes"))
    };
    Ok((decode32("SERVERHASH")?, decode32("SERVERNONCE")?))
}

/// Turns tor's refusal of an AUTHENTICATE/AUTHCHALLENGE into [`ControlError::Auth`].
fn auth_error(e: ControlError) -> ControlError {
    match e {
        ControlError::Rejected { code, message, .. } => {
            ControlError::Auth(format!("tor answered {code} {message}"))
        }
        other => other,
    }
}

async fn read_cookie(path: &Path) -> Result<Zeroizing<[u8; 32]>, ControlError> {
    let bytes =
        Zeroizing::new(
            tokio::fs::read(path)
                .await
                .map_err(|source| ControlError::Cookie {
                    path: path.to_path_buf(),
                    source,
                })?,
        );
    let mut cookie = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return Err(ControlError::Auth(format!(
            "cookie file {} is {} bytes, expected 32",
            path.display(),
            bytes.len()
        )));
    }
    cookie.copy_from_slice(&bytes);
    Ok(cookie)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::fake_tor::fake_tor;

    #[test]
    fn safecookie_hashes_match_reference_construction() {
        // HMAC-SHA256(key, cookie | client nonce | server nonce), as in control-spec §3.24,
        // checked against a value computed independently (Python hmac module).
        let cookie = [1u8; 32];
        let cn = [2u8; 32];
        let sn = [3u8; 32];
        let mut m = Hmac::<Sha256>::new_from_slice(SAFECOOKIE_SERVER_KEY).unwrap();
        m.update(&cookie);
        m.update(&cn);
        m.update(&sn);
        let out = HEXUPPER.encode(&m.finalize().into_bytes());
        assert_eq!(out, SERVER_HASH_REFERENCE);
    }

    const SERVER_HASH_REFERENCE: &str =
        "1830D2DE6E061E60ADFA2C0C2A9257B7126E51B074F39BD4519D89229DF08827";

    #[tokio::test]
    async fn safecookie_rejects_a_server_that_does_not_know_the_cookie() {
        let dir = tempfile::tempdir().unwrap();
        let cookie = dir.path().join("cookie");
        std::fs::write(&cookie, [9u8; 32]).unwrap();
        let addr = fake_tor(vec![
            (
                "PROTOCOLINFO 1",
                vec!["250-PROTOCOLINFO 1\r\n250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE=\"/x\"\r\n250-VERSION Tor=\"0.4.9.11\"\r\n250 OK\r\n"],
            ),
            (
                "AUTHCHALLENGE SAFECOOKIE ",
                vec!["250 AUTHCHALLENGE SERVERHASH=0000000000000000000000000000000000000000000000000000000000000000 SERVERNONCE=1111111111111111111111111111111111111111111111111111111111111111\r\n"],
            ),
        ])
        .await;
        let mut c = Control::connect(addr).await.unwrap();
        let err = c
            .authenticate(&ControlAuth::Cookie(Some(cookie)))
            .await
            .unwrap_err();
        assert!(matches!(err, ControlError::Auth(_)), "{err:?}");
    }
}
