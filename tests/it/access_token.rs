//! `DELETE /api/me/access-token`: the console's "Revoke token".

use crate::common::{ROOT_PASSWORD, TestServer, send};

#[tokio::test]
async fn revoking_the_access_token_ends_it_and_a_second_revoke_is_no_error() {
    let t = TestServer::start().await;
    let (token, cookie) = crate::common::sign_in(&t.base, "root", ROOT_PASSWORD).await;
    let bearer = format!("Bearer {token}");
    let me = send(
        "GET",
        &t.url("/api/me"),
        &[("authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(me.status, 200);

    // A cookie session needs its CSRF token for the DELETE.
    let no_csrf = send(
        "DELETE",
        &t.url("/api/me/access-token"),
        &[("cookie", &cookie)],
        None,
    )
    .await;
    assert_eq!(no_csrf.status, 403, "{}", no_csrf.text());
    let still = send(
        "GET",
        &t.url("/api/me"),
        &[("authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(
        still.status, 200,
        "a refused revoke leaves the token working"
    );

    // The token revokes itself; afterwards it is refused.
    let r = send(
        "DELETE",
        &t.url("/api/me/access-token"),
        &[("authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let gone = send(
        "GET",
        &t.url("/api/me"),
        &[("authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(gone.status, 401);
    let again = send(
        "DELETE",
        &t.url("/api/me/access-token"),
        &[("authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(again.status, 401, "a revoked token cannot act");
}
