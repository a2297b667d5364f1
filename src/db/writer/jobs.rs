//! The kinds of job the writer runs: a `Call` (a change whose caller waits for its result), a
//! `Chore` (bookkeeping nobody waits for) and a `CreateUser` (a user create, whose insert the
//! batch makes together with its other new users). Each runs in the writer's `Batch`.

use diesel::QueryResult;

use super::WriteError;
use crate::db::Batch;
use crate::db::users::NewUser;

/// A change queued for the writer.
pub(super) trait Job: Send {
    /// The user this job creates, for the batch to insert together with its other jobs' before
    /// it runs them (on Postgres one statement for all: see `users::insert`); the job's run
    /// records the creation (its event), in its turn.
    fn new_user(&self) -> Option<&NewUser> {
        None
    }
    /// Runs the change in the batch (it may queue events and request-log rows in it) and
    /// returns whether what it did stands (false: the writer rolls it back; an error gives up
    /// the whole batch). `inserted`: whether its new user went in. Runs again, from scratch,
    /// when its batch is replayed.
    fn run(&mut self, batch: &mut Batch<'_>, inserted: bool) -> QueryResult<bool>;
    /// Hands the outcome of the last run to the caller once the batch's fate is known (`Ok`
    /// when it committed).
    fn settle(self: Box<Self>, batch: Result<(), WriteError>);
}

/// The sender of a job's reply.
pub(super) type Reply<T> = tokio::sync::oneshot::Sender<Result<T, WriteError>>;

/// A job whose caller waits for its result.
pub(super) struct Call<F, T, E> {
    pub f: F,
    pub result: Option<Result<T, E>>,
    pub reply: Reply<Result<T, E>>,
}

impl<F, T, E> Job for Call<F, T, E>
where
    F: FnMut(&mut Batch<'_>) -> Result<T, E> + Send,
    T: Send,
    E: Send,
{
    fn run(&mut self, batch: &mut Batch<'_>, _: bool) -> QueryResult<bool> {
        let result = (self.f)(batch);
        let stands = result.is_ok();
        self.result = Some(result);
        Ok(stands)
    }

    fn settle(self: Box<Self>, batch: Result<(), WriteError>) {
        reply(self.reply, batch, self.result);
    }
}

/// Hands a job's result (of its last run) to its caller once the batch's fate is known.
fn reply<T>(to: Reply<T>, batch: Result<(), WriteError>, result: Option<T>) {
    let outcome = match (batch, result) {
        (Ok(()), Some(result)) => Ok(result),
        (Err(e), _) => Err(e),
        // Never ran: dropping the sender tells the caller the write was abandoned.
        (Ok(()), None) => return,
    };
    let _ = to.send(outcome);
}

/// Bookkeeping nobody waits for: a failure is only logged.
pub(super) struct Chore<F> {
    pub what: &'static str,
    pub f: F,
}

impl<F> Job for Chore<F>
where
    F: FnMut(&mut Batch<'_>) -> Result<(), diesel::result::Error> + Send,
{
    fn run(&mut self, batch: &mut Batch<'_>, _: bool) -> QueryResult<bool> {
        let done = (self.f)(batch);
        if let Err(e) = &done {
            log::error!("{} failed: {e}", self.what);
        }
        Ok(done.is_ok())
    }

    fn settle(self: Box<Self>, _: Result<(), WriteError>) {}
}

/// A user create. With `insert_first` the batch inserts the user before the jobs run, and a
/// taken userName changes nothing (so never spoils the batch): `store` then runs only when it
/// went in. Otherwise (the user joins groups, which can fail) `store` makes the insert itself,
/// so that the job is undone alone.
pub(super) struct CreateUser<F, T, E> {
    pub user: NewUser,
    pub insert_first: bool,
    /// Stores the rest of the create; gets whether the batch inserted the user (`None`: not
    /// tried, `store` inserts it).
    pub store: F,
    /// `None`: the userName is taken.
    pub result: Option<Option<Result<T, E>>>,
    pub reply: Reply<Option<Result<T, E>>>,
}

impl<F, T, E> Job for CreateUser<F, T, E>
where
    F: FnMut(&mut Batch<'_>, &NewUser, Option<bool>) -> Result<T, E> + Send,
    T: Send,
    E: Send,
{
    fn new_user(&self) -> Option<&NewUser> {
        self.insert_first.then_some(&self.user)
    }

    fn run(&mut self, batch: &mut Batch<'_>, inserted: bool) -> QueryResult<bool> {
        if self.insert_first && !inserted {
            self.result = Some(None);
            return Ok(true);
        }
        let result = (self.store)(batch, &self.user, self.insert_first.then_some(true));
        let stands = result.is_ok();
        self.result = Some(Some(result));
        if self.insert_first && !stands {
            // The user went in before the jobs ran: its create cannot be undone alone.
            return Err(diesel::result::Error::RollbackTransaction);
        }
        Ok(stands)
    }

    fn settle(self: Box<Self>, batch: Result<(), WriteError>) {
        reply(self.reply, batch, self.result);
    }
}
