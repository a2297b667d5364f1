//! Fair shares of the server between directories.
//!
//! A provider's initial sync sends as many requests at once as it is allowed to, and each one
//! takes the server's CPU (parsing, checks, rendering) and a place in the writer's batches.
//! Left alone, a directory sending sixteen at once leaves another directory's single request
//! waiting behind sixteen of its own on two cores. So a SCIM request is served only once it
//! holds one of a few places (`FairShare::enter`); when none is free it waits, and freed places
//! go to the waiting directories in turn, not in arrival order.
//!
//! How many places one directory may hold depends on how many directories sent requests in
//! the last second: alone, every place but one (a directory alone is not slowed); beside
//! others, an equal share (at least a quarter of the places). So a busy directory already
//! holds no more than its share when a quiet directory's next request arrives, and that
//! request finds a place free. Requests that wait hold nothing but their headers: their
//! bodies are read after they enter.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// Places per core, and at least.
const PLACES_PER_CORE: usize = 8;
const MIN_PLACES: usize = 16;
/// A directory that sent a request this recently counts as active.
const ACTIVE_WINDOW: Duration = Duration::from_secs(1);
/// How often the active directories are counted again.
const RECOUNT_EVERY: Duration = Duration::from_millis(10);

/// The places SCIM requests are served in, shared fairly between directories.
pub struct FairShare {
    places: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// When each directory active lately sent its last request.
    seen: HashMap<String, Instant>,
    /// Directories active lately, as last counted, and when.
    active: usize,
    counted_at: Option<Instant>,
    in_use: usize,
    /// Places held, per directory holding any.
    held: HashMap<String, usize>,
    /// Requests waiting, per directory with any.
    waiting: HashMap<String, VecDeque<oneshot::Sender<Place>>>,
    /// Directories with waiting requests, in the order their turns come.
    turns: VecDeque<String>,
}

/// A place held by a request until it is dropped.
pub struct Place {
    /// `None` once given back (or never counted).
    share: Option<Arc<FairShare>>,
    directory: String,
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Some(share) = self.share.take() {
            share.give_back(&self.directory);
        }
    }
}

impl FairShare {
    /// Places for a machine with `cores` cores.
    pub fn for_cores(cores: usize) -> FairShare {
        FairShare::new((cores * PLACES_PER_CORE).max(MIN_PLACES))
    }

    /// `places` places (at least two).
    pub fn new(places: usize) -> FairShare {
        FairShare {
            places: places.max(2),
            state: Mutex::new(State::default()),
        }
    }

    /// Places one directory may hold now.
    fn share(&self, state: &State) -> usize {
        match state.active {
            0 | 1 => self.places - 1,
            n => (self.places / n).max(self.places / 4).max(1),
        }
    }

    /// Notes `directory`'s request, and counts the active directories again when due.
    fn note(state: &mut State, directory: &str, now: Instant) {
        match state.seen.get_mut(directory) {
            Some(at) => *at = now,
            None => {
                // A directory becoming active shrinks the others' shares at once.
                state.seen.insert(directory.to_string(), now);
                state.active = state.seen.len();
            }
        }
        if state
            .counted_at
            .is_none_or(|at| now.duration_since(at) >= RECOUNT_EVERY)
        {
            state
                .seen
                .retain(|_, at| now.duration_since(*at) < ACTIVE_WINDOW);
            state.active = state.seen.len();
            state.counted_at = Some(now);
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a place for a request of `directory`.
    pub async fn enter_owned(self: Arc<Self>, directory: String) -> Place {
        self.enter(&directory).await
    }

    /// Waits for a place for a request of `directory`.
    pub async fn enter(self: &Arc<Self>, directory: &str) -> Place {
        let waiting = {
            let mut state = self.lock();
            Self::note(&mut state, directory, Instant::now());
            let held = state.held.get(directory).copied().unwrap_or(0);
            if state.in_use < self.places && held < self.share(&state) {
                return self.take(&mut state, directory);
            }
            let (tx, rx) = oneshot::channel();
            let queue = state.waiting.entry(directory.to_string()).or_default();
            queue.push_back(tx);
            if queue.len() == 1 {
                state.turns.push_back(directory.to_string());
            }
            rx
        };
        // The sender is dropped only with the whole share (the server stopping): go on then.
        waiting.await.unwrap_or(Place {
            share: None,
            directory: directory.to_string(),
        })
    }

    /// Counts a place as `directory`'s.
    fn take(self: &Arc<Self>, state: &mut State, directory: &str) -> Place {
        state.in_use += 1;
        *state.held.entry(directory.to_string()).or_default() += 1;
        Place {
            share: Some(self.clone()),
            directory: directory.to_string(),
        }
    }

    /// Frees `directory`'s place and hands it to the next directory whose turn it is.
    fn give_back(self: &Arc<Self>, directory: &str) {
        let mut state = self.lock();
        Self::uncount(&mut state, directory);
        self.hand_on(&mut state);
    }

    fn uncount(state: &mut State, directory: &str) {
        state.in_use = state.in_use.saturating_sub(1);
        if let Some(held) = state.held.get_mut(directory) {
            *held -= 1;
            if *held == 0 {
                state.held.remove(directory);
            }
        }
    }

    /// Gives free places to waiting requests, one directory's turn after another; skips
    /// directories at their limit and requests whose client has gone.
    fn hand_on(self: &Arc<Self>, state: &mut State) {
        // Directories passed over in a row (at their limit): once all were, nobody can enter.
        let mut passed = 0;
        while state.in_use < self.places && passed < state.turns.len() {
            let Some(directory) = state.turns.pop_front() else {
                break;
            };
            if state.held.get(&directory).copied().unwrap_or(0) >= self.share(state) {
                state.turns.push_back(directory);
                passed += 1;
                continue;
            }
            if self.give_to_first_waiter(state, &directory) {
                passed = 0;
            }
            if state.waiting.get(&directory).is_some_and(|q| !q.is_empty()) {
                state.turns.push_back(directory);
            } else {
                state.waiting.remove(&directory);
            }
        }
    }

    /// Gives a place to `directory`'s longest-waiting request still there; false if none is.
    fn give_to_first_waiter(self: &Arc<Self>, state: &mut State, directory: &str) -> bool {
        while let Some(waiter) = state
            .waiting
            .get_mut(directory)
            .and_then(VecDeque::pop_front)
        {
            let place = self.take(state, directory);
            match waiter.send(place) {
                Ok(()) => return true,
                Err(mut place) => {
                    // Its request was dropped while it waited: the place was never taken (and
                    // dropping it must not give it back: that would lock the state again).
                    place.share = None;
                    Self::uncount(state, directory);
                }
            }
        }
        false
    }

    /// Whether more than one directory sent requests lately (one of them usually the caller's).
    pub fn others_active(&self) -> bool {
        self.lock().active > 1
    }

    /// Places held now, and requests waiting (for tests and the metrics).
    pub fn load(&self) -> (usize, usize) {
        let state = self.lock();
        (
            state.in_use,
            state.waiting.values().map(VecDeque::len).sum(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim_endpoint::poll_once;
    use std::pin::Pin;

    fn entered(share: &Arc<FairShare>, directory: &str) -> Place {
        let mut f = Box::pin(share.clone().enter_owned(directory.to_string()));
        poll_once(&mut f).expect("a free place")
    }

    /// Starts `directory`'s entry: the request waits in line from here on.
    fn queued(share: &Arc<FairShare>, directory: &str) -> Pin<Box<impl Future<Output = Place>>> {
        let mut f = Box::pin(share.clone().enter_owned(directory.to_string()));
        assert!(poll_once(&mut f).is_none(), "{directory} waits");
        f
    }

    #[test]
    fn a_directory_alone_holds_all_places_but_one_and_beside_another_its_share() {
        let share = Arc::new(FairShare::new(8));
        let a: Vec<Place> = (0..7).map(|_| entered(&share, "a")).collect();
        let _eighth_a = queued(&share, "a");
        let _b = entered(&share, "b");
        drop(a);
        let _a: Vec<Place> = (0..3).map(|_| entered(&share, "a")).collect();
        let _fifth_a = queued(&share, "a");
        assert_eq!(share.load(), (5, 1), "a holds its half: four");
    }

    #[test]
    fn one_directory_never_holds_every_place() {
        let share = Arc::new(FairShare::new(4));
        let a: Vec<Place> = (0..3).map(|_| entered(&share, "a")).collect();
        let mut fourth_a = queued(&share, "a");
        let b = entered(&share, "b");
        assert_eq!(share.load(), (4, 1));
        drop(b);
        assert!(
            poll_once(&mut fourth_a).is_none(),
            "the last place stays free of a"
        );
        drop(a);
        let fourth = poll_once(&mut fourth_a).expect("a place");
        assert_eq!(share.load(), (1, 0));
        drop(fourth);
        assert_eq!(share.load(), (0, 0));
    }

    #[test]
    fn freed_places_go_to_waiting_directories_in_turn() {
        let share = Arc::new(FairShare::new(2));
        let first = entered(&share, "a");
        let second = entered(&share, "b");
        // Three of a's wait, then one of b's, then one of c's.
        let mut a_waits: Vec<_> = (0..3).map(|_| queued(&share, "a")).collect();
        let mut b_waits = queued(&share, "b");
        let mut c_waits = queued(&share, "c");
        assert_eq!(share.load(), (2, 5));
        drop(first);
        let _a1 = poll_once(&mut a_waits[0]).expect("a's turn first: it waited first");
        drop(second);
        assert!(
            poll_once(&mut a_waits[1]).is_none(),
            "a already holds its limit of one"
        );
        let b1 = poll_once(&mut b_waits).expect("then b's turn");
        drop(b1);
        let _c1 = poll_once(&mut c_waits).expect("then c's, before a's second");
        assert!(poll_once(&mut a_waits[1]).is_none());
        assert_eq!(share.load(), (2, 2));
    }

    #[test]
    fn a_waiter_that_left_gives_its_place_on() {
        let share = Arc::new(FairShare::new(2));
        let a = entered(&share, "a");
        let b = entered(&share, "b");
        let gone = queued(&share, "c");
        let mut stays = queued(&share, "c");
        drop(gone);
        drop(a);
        let c = poll_once(&mut stays).expect("the one still waiting");
        drop(b);
        assert_eq!(share.load(), (1, 0));
        drop(c);
        assert_eq!(share.load(), (0, 0));
    }

    #[test]
    fn a_granted_place_whose_request_was_dropped_is_given_back() {
        let share = Arc::new(FairShare::new(2));
        let a = entered(&share, "a");
        let b = entered(&share, "b");
        let waits = queued(&share, "c");
        drop(a); // The place is sent to the waiter…
        assert_eq!(share.load(), (2, 0));
        drop(waits); // …which goes before taking it.
        assert_eq!(share.load(), (1, 0));
        drop(b);
        assert_eq!(share.load(), (0, 0));
    }
}
