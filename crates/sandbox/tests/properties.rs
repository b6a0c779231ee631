//! The fronts' parsers of client input under proptest: arbitrary input never panics (the fuzz target's body,
//! `mss_testing::fuzzing::sandbox_client_input`), and well-formed responses give back exactly what was sent.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mss_sandbox::front::{parse_bearer, parse_plain};
use proptest::prelude::*;

proptest! {
    #[test]
    fn arbitrary_client_input_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = mss_testing::fuzzing::sandbox_client_input(&data);
        let b64 = STANDARD.encode(&data);
        let _ = mss_testing::fuzzing::sandbox_client_input(b64.as_bytes());
    }

    #[test]
    fn xoauth2_and_plain_give_back_the_mailbox_and_token(
        user in "[a-z0-9.]{1,20}@[a-z]{1,10}\\.mssante\\.fr",
        token in "[A-Za-z0-9_.-]{1,200}",
    ) {
        let xoauth2 = STANDARD.encode(format!("user={user}\x01auth=Bearer {token}\x01\x01"));
        prop_assert_eq!(parse_bearer("XOAUTH2", &xoauth2), Ok((user.clone(), token.clone())));
        let oauthbearer = STANDARD.encode(format!("n,a={user},\x01host=localhost\x01auth=Bearer {token}\x01\x01"));
        prop_assert_eq!(parse_bearer("OAUTHBEARER", &oauthbearer), Ok((user.clone(), token.clone())));
        let plain = STANDARD.encode(format!("\0{user}\0"));
        prop_assert_eq!(parse_plain(&plain), Ok(user.clone()));
        let plain_authz = STANDARD.encode(format!("{user}\0someone\0secret"));
        prop_assert_eq!(parse_plain(&plain_authz), Ok(user));
    }
}
