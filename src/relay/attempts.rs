//! The order of a call's attempts: channels in the order routing chose, and within a channel
//! its usable keys, this call's turn first (see [`crate::store::channel_keys::KeyRing`]).

use super::Failure;
use crate::store::channel_keys::{KeyOrder, PickedKey};
use crate::store::channels::ChannelRow;
use std::sync::Arc;

pub(super) struct Attempts<'a> {
    channels: std::slice::Iter<'a, Arc<ChannelRow>>,
    /// The channel being tried, the keys it has left, and whether one was tried.
    current: Option<(&'a Arc<ChannelRow>, KeyOrder<'a>, bool)>,
}

impl<'a> Attempts<'a> {
    pub(super) fn new(channels: &'a [Arc<ChannelRow>]) -> Attempts<'a> {
        Attempts {
            channels: channels.iter(),
            current: None,
        }
    }

    /// The next attempt: the current channel's next usable key, else the next channel's first.
    /// A channel with no usable key at all is a failure of its own.
    pub(super) fn next(
        &mut self,
        failures: &mut Vec<Failure>,
    ) -> Option<(&'a Arc<ChannelRow>, PickedKey<'a>)> {
        loop {
            if let Some((channel, keys, tried)) = &mut self.current {
                if let Some(key) = keys.next() {
                    *tried = true;
                    return Some((channel, key));
                }
                if !*tried {
                    failures.push(Failure {
                        channel_id: channel.id,
                        what: "every key of the channel is turned off".into(),
                        status: None,
                        timeout: false,
                    });
                }
            }
            let channel = self.channels.next()?;
            self.current = Some((channel, channel.keys.order(), false));
        }
    }

    /// Gives up on the current channel: the next attempt goes to the next channel.
    pub(super) fn next_channel(&mut self) {
        self.current = None;
    }
}
