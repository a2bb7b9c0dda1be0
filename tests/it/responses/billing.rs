//! Money across the Responses lanes: a concurrent race per lane (passthrough, conversion),
//! streamed and not, after which the ledger equals the logs and no balance went negative.

use super::anthropic_channel;
use crate::common::TestServer;
use crate::formats::race::{Client, race_keeps_the_ledger_equal_to_the_logs};
use serde_json::json;

/// 40 calls at once against a balance of 1,000: every charge has its row, the balance never
/// goes negative, and the ledger equals the logs.
#[tokio::test]
async fn concurrent_races_per_responses_lane_keep_the_ledger_equal_to_the_logs() {
    for (channel_kind, stream) in [
        ("openai", false),
        ("openai", true),
        ("anthropic", false),
        ("anthropic", true),
    ] {
        let t = TestServer::start().await;
        if channel_kind == "anthropic" {
            anthropic_channel(&t, &["m"], json!({})).await;
        } else {
            t.channel(&["m"], json!({})).await;
        }
        let what = format!("responses->{channel_kind} stream={stream}");
        race_keeps_the_ledger_equal_to_the_logs(&t, Client::responses(stream), &what).await;
    }
}
