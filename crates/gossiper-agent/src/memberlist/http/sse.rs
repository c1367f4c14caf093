//! `GET /v1/events` as Server-Sent Events (`Accept: text/event-stream`), as the gossiper
//! agent's API streams its own events: `user` for each user event received (the JSON of the
//! event list), `member` for each member whose status, address or incarnation changed (from
//! the agent's membership snapshots, so a change quicker than a snapshot shows only its
//! last state), `lagged` when the stream fell behind and lost user events. The stream holds
//! one of the parked-query slots and ends when the agent stops.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use gossiper_memberlist::Member;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{OwnedSemaphorePermit, broadcast, watch};

use super::super::{EventRecord, MemberlistHandle};

/// What identifies a member's state in the stream.
type Seen = BTreeMap<String, (String, String, u32)>;

fn seen(members: &[Member]) -> Seen {
    members
        .iter()
        .map(|m| {
            (
                m.name.clone(),
                (
                    m.status.as_str().to_owned(),
                    m.addr.to_string(),
                    m.incarnation,
                ),
            )
        })
        .collect()
}

/// What woke the stream.
enum Next {
    User(Result<EventRecord, RecvError>),
    Members(bool),
}

struct StreamState {
    events: broadcast::Receiver<EventRecord>,
    members: watch::Receiver<Arc<[Member]>>,
    last: Seen,
    pending: VecDeque<SseEvent>,
    _slot: OwnedSemaphorePermit,
}

/// The event stream of `handle`, holding `slot` while it lasts.
pub(super) fn stream(
    handle: &MemberlistHandle,
    slot: OwnedSemaphorePermit,
    event_json: fn(&EventRecord) -> Value,
) -> Response {
    let events = handle.subscribe();
    let mut members = handle.membership();
    let last = seen(&members.borrow_and_update());
    let state = StreamState {
        events,
        members,
        last,
        pending: VecDeque::new(),
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(state, move |mut s| async move {
        loop {
            if let Some(e) = s.pending.pop_front() {
                return Some((Ok::<_, Infallible>(e), s));
            }
            let next = tokio::select! {
                r = s.events.recv() => Next::User(r),
                changed = s.members.changed() => Next::Members(changed.is_ok()),
            };
            match next {
                Next::User(Ok(record)) => s.pending.push_back(
                    SseEvent::default()
                        .event("user")
                        .data(event_json(&record).to_string()),
                ),
                Next::User(Err(RecvError::Lagged(n))) => s.pending.push_back(
                    SseEvent::default()
                        .event("lagged")
                        .data(json!({ "missed": n }).to_string()),
                ),
                Next::User(Err(RecvError::Closed)) | Next::Members(false) => return None,
                Next::Members(true) => {
                    let now = seen(&s.members.borrow_and_update());
                    for (name, state) in &now {
                        if s.last.get(name) != Some(state) {
                            let (status, addr, incarnation) = state;
                            s.pending.push_back(
                                SseEvent::default().event("member").data(
                                    json!({
                                        "name": name, "status": status, "addr": addr,
                                        "incarnation": incarnation,
                                    })
                                    .to_string(),
                                ),
                            );
                        }
                    }
                    s.last = now;
                }
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
