//! Runs a list of named steps, each with its undo, in the manner of omicron's sagas: rows of
//! steps run in order, the steps of one row at once; when a step fails, the steps that were
//! done (those of its own row included) are undone in reverse order, a row's undos at once,
//! best effort: every undo runs and every undo error is kept.
//!
//! A step that fails part way cleans up what it did itself; only steps that finished are
//! undone. Undos are idempotent and work from what is on the host, so the same undos also
//! serve a teardown that knows nothing of what was done ([`undo_rows`] over every step).

use std::fmt::Debug;
use std::future::Future;

use futures_util::future::join_all;

/// What can be undone, step by step.
pub(crate) trait Undo: Sync {
    /// A step's name.
    type Step: Copy + Debug + PartialEq + Send + Sync;
    /// Why an undo failed.
    type UndoError: Send;

    /// Whether `step` has anything to undo (checks and pure steps do not).
    fn undoable(step: Self::Step) -> bool;

    /// Undoes `step`, best effort: every error it met (none: undone).
    fn undo(&self, step: Self::Step) -> impl Future<Output = Vec<Self::UndoError>> + Send;
}

/// Steps that can be done, and undone.
pub(crate) trait Saga: Undo {
    /// Why a step failed.
    type Error: Send;

    /// Does `step`; on failure it leaves nothing of itself behind.
    fn act(&self, step: Self::Step) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// A saga that failed: the step and why, and its undo.
pub(crate) struct Failed<S: Saga> {
    /// The step that failed (the first of its row, if several did).
    pub step: S::Step,
    /// Why.
    pub error: S::Error,
    /// Other steps of the same row that failed too, and why.
    pub also: Vec<(S::Step, S::Error)>,
    /// What the undo did.
    pub undone: Undone<S>,
}

/// What an undo did.
pub(crate) struct Undone<U: Undo> {
    /// The steps undone, in order (only those with an undo).
    pub steps: Vec<U::Step>,
    /// Every undo error, with its step.
    pub errors: Vec<(U::Step, U::UndoError)>,
}

/// Runs `rows` in order, the steps of a row at once; on failure undoes what was done.
pub(crate) async fn run<S: Saga>(saga: &S, rows: &[&[S::Step]]) -> Result<(), Failed<S>> {
    let mut done: Vec<Vec<S::Step>> = Vec::with_capacity(rows.len());
    for row in rows {
        let results = join_all(row.iter().map(|step| saga.act(*step))).await;
        let mut ok = Vec::new();
        let mut failed = Vec::new();
        for (step, result) in row.iter().zip(results) {
            match result {
                Ok(()) => ok.push(*step),
                Err(e) => failed.push((*step, e)),
            }
        }
        done.push(ok);
        let mut failed = failed.into_iter();
        if let Some((step, error)) = failed.next() {
            let also = failed.collect();
            let rows: Vec<&[S::Step]> = done.iter().rev().map(Vec::as_slice).collect();
            let undone = undo_rows(saga, &rows).await;
            return Err(Failed {
                step,
                error,
                also,
                undone,
            });
        }
    }
    Ok(())
}

/// Undoes `rows` in the order given, the steps of a row at once, carrying on past errors.
pub(crate) async fn undo_rows<U: Undo>(u: &U, rows: &[&[U::Step]]) -> Undone<U> {
    let mut out = Undone {
        steps: Vec::new(),
        errors: Vec::new(),
    };
    for row in rows {
        let row: Vec<U::Step> = row.iter().copied().filter(|s| U::undoable(*s)).collect();
        let results = join_all(row.iter().map(|step| u.undo(*step))).await;
        for (step, errors) in row.into_iter().zip(results) {
            out.steps.push(step);
            out.errors.extend(errors.into_iter().map(|e| (step, e)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Steps 0..n; `fail` fails that step, `bad_undo` fails that undo.
    struct Toy {
        log: Mutex<Vec<String>>,
        fail: Option<u8>,
        bad_undo: Option<u8>,
    }

    impl Undo for Toy {
        type Step = u8;
        type UndoError = String;

        fn undoable(step: u8) -> bool {
            step != 9
        }

        async fn undo(&self, step: u8) -> Vec<String> {
            self.log.lock().unwrap().push(format!("-{step}"));
            if self.bad_undo == Some(step) {
                vec![format!("undo {step} failed")]
            } else {
                Vec::new()
            }
        }
    }

    impl Saga for Toy {
        type Error = String;

        async fn act(&self, step: u8) -> Result<(), String> {
            self.log.lock().unwrap().push(format!("+{step}"));
            if self.fail == Some(step) {
                Err(format!("{step} failed"))
            } else {
                Ok(())
            }
        }
    }

    fn toy(fail: Option<u8>, bad_undo: Option<u8>) -> Toy {
        Toy {
            log: Mutex::default(),
            fail,
            bad_undo,
        }
    }

    const ROWS: &[&[u8]] = &[&[1], &[9], &[2, 3], &[4]];

    #[tokio::test]
    async fn all_done_nothing_undone() {
        let t = toy(None, None);
        assert!(run(&t, ROWS).await.is_ok());
        assert_eq!(*t.log.lock().unwrap(), ["+1", "+9", "+2", "+3", "+4"]);
    }

    #[tokio::test]
    async fn a_failure_undoes_what_was_done_in_reverse_and_keeps_every_undo_error() {
        let t = toy(Some(4), Some(2));
        let Err(f) = run(&t, ROWS).await else {
            panic!("it fails")
        };
        assert_eq!((f.step, f.error.as_str()), (4, "4 failed"));
        assert_eq!(f.undone.steps, [2, 3, 1], "9 has no undo");
        assert_eq!(f.undone.errors, [(2, "undo 2 failed".to_owned())]);
        assert_eq!(
            *t.log.lock().unwrap(),
            ["+1", "+9", "+2", "+3", "+4", "-2", "-3", "-1"]
        );
    }

    #[tokio::test]
    async fn a_failure_in_a_row_undoes_the_rest_of_the_row() {
        let t = toy(Some(2), None);
        let Err(f) = run(&t, ROWS).await else {
            panic!("it fails")
        };
        assert_eq!(f.step, 2);
        assert!(f.also.is_empty());
        assert_eq!(f.undone.steps, [3, 1]);
    }
}
