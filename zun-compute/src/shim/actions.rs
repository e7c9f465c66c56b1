//! A user's lifecycle actions on the capsule's app containers, inside the shim: stop (the
//! container's stop signal, SIGKILL after the grace period; it then stays stopped whatever its
//! restart policy says), start, restart, kill, pause and unpause (libcontainer's cgroup
//! freezer). Each is idempotent: stopping a stopped container, starting a running one, pausing
//! a paused one do nothing and succeed. An action is answered once its containers settled.

use std::time::{Duration, Instant};

use chrono::Utc;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::cgroup;
use super::error_chain;
use super::lifecycle::{stop_signal, Cause};
use super::protocol::{ActReply, ActResult, Action};
use super::state::{send, PendingAct, Shim, UnitStop};
use super::status::{ContainerState, Phase};

/// How long SIGKILLed processes of a stopped container get to be reaped.
const KILL_PATIENCE: Duration = Duration::from_secs(3);

fn ok(name: &str) -> ActResult {
    ActResult {
        name: name.to_owned(),
        error: None,
        conflict: false,
    }
}

fn refused(name: &str, conflict: bool, message: String) -> ActResult {
    ActResult {
        name: name.to_owned(),
        error: Some(message),
        conflict,
    }
}

impl Shim {
    /// Starts `action` on `container` (every app container when `None`) for client `client`,
    /// which is answered by [`Shim::answer_acts`] once the containers settled.
    pub(super) fn act(&mut self, client: usize, container: Option<&str>, action: Action) {
        let units: Vec<usize> = match container {
            None => (self.n_init..self.units.len()).collect(),
            Some(name) => match self.units.iter().position(|u| u.plan.name == name) {
                Some(i) if i >= self.n_init => vec![i],
                Some(_) => {
                    let r = refused(name, true, format!("{name} is an init container"));
                    send(&mut self.clients[client], &ActReply { results: vec![r] });
                    return;
                }
                None => {
                    let r = refused(name, false, format!("no container {name} in this capsule"));
                    send(&mut self.clients[client], &ActReply { results: vec![r] });
                    return;
                }
            },
        };
        let mut results = Vec::new();
        for &i in &units {
            let name = self.units[i].plan.name.clone();
            let r = match self.begin(i, action) {
                Ok(()) => ok(&name),
                Err((conflict, message)) => refused(&name, conflict, message),
            };
            results.push(r);
        }
        self.clients[client].pending_act = Some(PendingAct { units, results });
        self.answer_acts();
    }

    /// Why nothing can be done to any container now, if so.
    fn blocked(&self) -> Option<String> {
        if self.stopping.is_some() || self.phase == Phase::Stopped {
            return Some("the capsule is being deleted".into());
        }
        if self.sandbox_pid.is_none() {
            return Some("the capsule's sandbox does not run".into());
        }
        None
    }

    /// Starts the action on unit `i`: `Err((conflict, why))` if it cannot be done.
    fn begin(&mut self, i: usize, action: Action) -> Result<(), (bool, String)> {
        if let Some(why) = self.blocked() {
            return Err((true, why));
        }
        let name = self.units[i].plan.name.clone();
        let state = self.units[i].status.state;
        match action {
            Action::Stop { grace_ms } | Action::Restart { grace_ms } => {
                let restart = matches!(action, Action::Restart { .. });
                self.units[i].start_after_stop = restart;
                if state == ContainerState::Paused {
                    self.thaw(i).map_err(|e| (false, e))?;
                }
                let u = &mut self.units[i];
                // Waiting for a restart, or never started: nothing runs, it just stays down.
                if u.restart_at.take().is_some() || u.status.state != ContainerState::Running {
                    if u.status.state != ContainerState::Stopped {
                        u.status.state = ContainerState::Stopped;
                        u.status.reason = Some("Stopped".into());
                        u.status.finished_at.get_or_insert_with(Utc::now);
                    }
                    return Ok(());
                }
                if u.stop.is_none() {
                    let signal = stop_signal(&u.plan);
                    tracing::info!(container = %name, ?signal, grace_ms, "stop");
                    if let Some(pid) = u.status.pid {
                        let _ = kill(Pid::from_raw(pid), signal);
                    }
                    u.stop = Some(UnitStop {
                        deadline: Instant::now() + Duration::from_millis(grace_ms),
                        killed: false,
                    });
                }
                Ok(())
            }
            Action::Start => match state {
                ContainerState::Running | ContainerState::Restarting | ContainerState::Created => {
                    Ok(())
                }
                ContainerState::Paused => Err((true, format!("{name} is paused"))),
                ContainerState::Stopped | ContainerState::Exited | ContainerState::Failed => {
                    if self.units[i].stop.is_some() {
                        // Still stopping: start it once it is down.
                        self.units[i].start_after_stop = true;
                        return Ok(());
                    }
                    self.user_start(i);
                    match self.units[i].status.state {
                        ContainerState::Running => Ok(()),
                        _ => Err((
                            false,
                            self.units[i]
                                .status
                                .reason
                                .clone()
                                .unwrap_or_else(|| "it did not start".into()),
                        )),
                    }
                }
            },
            Action::Kill { signal } => {
                let signal = Signal::try_from(signal)
                    .map_err(|_| (false, format!("{signal} is not a signal")))?;
                match (state, self.units[i].status.pid) {
                    (ContainerState::Running, Some(pid)) => {
                        tracing::info!(container = %name, ?signal, "kill");
                        kill(Pid::from_raw(pid), signal)
                            .map_err(|e| (false, format!("cannot signal {name}: {e}")))?;
                        // SIGKILL (`zun kill`'s default) stops it for good, as `docker kill`
                        // does: a user's stop, which the restart policy leaves alone. Other
                        // signals are only delivered.
                        let u = &mut self.units[i];
                        if signal == Signal::SIGKILL && u.stop.is_none() {
                            u.stop = Some(UnitStop {
                                deadline: Instant::now() + KILL_PATIENCE,
                                killed: true,
                            });
                        }
                        Ok(())
                    }
                    (ContainerState::Paused, _) => Err((true, format!("{name} is paused"))),
                    _ => Err((true, format!("{name} is not running"))),
                }
            }
            Action::Fail => match (state, self.units[i].status.pid) {
                (ContainerState::Running, Some(pid)) => {
                    tracing::info!(container = %name, "killed as unhealthy");
                    // No `stop`: the exit is the container's, and its restart policy decides.
                    kill(Pid::from_raw(pid), Signal::SIGKILL)
                        .map_err(|e| (false, format!("cannot signal {name}: {e}")))
                }
                (ContainerState::Paused, _) => Err((true, format!("{name} is paused"))),
                _ => Err((true, format!("{name} is not running"))),
            },
            Action::Pause => match state {
                ContainerState::Paused => Ok(()),
                ContainerState::Running => self.freeze(i).map_err(|e| (false, e)),
                _ => Err((true, format!("{name} is not running"))),
            },
            Action::Unpause => match state {
                ContainerState::Paused => self.thaw(i).map_err(|e| (false, e)),
                ContainerState::Running => Ok(()),
                _ => Err((true, format!("{name} is not paused"))),
            },
        }
    }

    /// Starts a stopped app container again for a user.
    fn user_start(&mut self, i: usize) {
        let u = &mut self.units[i];
        u.start_after_stop = false;
        u.backoff = super::state::BACKOFF_START;
        u.status.reason = None;
        if matches!(self.phase, Phase::Succeeded | Phase::Failed) && self.sandbox_pid.is_some() {
            // The capsule lives again.
            self.phase = Phase::Running;
            self.reason = None;
        }
        self.start_app(i, Cause::User);
        let u = &mut self.units[i];
        if u.status.state == ContainerState::Restarting {
            // A failed user start is not retried by the policy.
            u.restart_at = None;
            u.status.state = ContainerState::Failed;
        }
    }

    fn freeze(&mut self, i: usize) -> Result<(), String> {
        let u = &mut self.units[i];
        let name = u.plan.name.clone();
        let c = u
            .container
            .as_mut()
            .ok_or_else(|| format!("{name} has no container to pause"))?;
        c.pause()
            .map_err(|e| format!("cannot pause {name}: {}", error_chain(&e)))?;
        u.status.state = ContainerState::Paused;
        tracing::info!(container = %name, "paused");
        Ok(())
    }

    /// Thaws a paused container.
    pub(super) fn thaw(&mut self, i: usize) -> Result<(), String> {
        let u = &mut self.units[i];
        let name = u.plan.name.clone();
        let c = u
            .container
            .as_mut()
            .ok_or_else(|| format!("{name} has no container to unpause"))?;
        c.resume()
            .map_err(|e| format!("cannot unpause {name}: {}", error_chain(&e)))?;
        u.status.state = ContainerState::Running;
        tracing::info!(container = %name, "unpaused");
        Ok(())
    }

    /// Moves users' stops on: SIGKILL once a grace period is over; a restart starts the
    /// container once it is down.
    pub(super) fn advance_user_stops(&mut self) {
        let now = Instant::now();
        for i in 0..self.units.len() {
            let u = &mut self.units[i];
            if let Some(stop) = u.stop.as_mut() {
                if now >= stop.deadline {
                    if !stop.killed {
                        stop.killed = true;
                        stop.deadline = now + KILL_PATIENCE;
                        tracing::info!(container = %u.plan.name, "grace over: SIGKILL");
                        cgroup::signal_tree(&self.hierarchies, &u.cgroup, Signal::SIGKILL);
                        if let Some(pid) = u.status.pid {
                            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                        }
                    } else {
                        tracing::error!(container = %u.plan.name, "not reaped after SIGKILL");
                        u.stop = None;
                    }
                }
            }
            let u = &self.units[i];
            if u.start_after_stop && u.stop.is_none() && u.status.state == ContainerState::Stopped {
                if self.blocked().is_none() {
                    self.user_start(i);
                } else {
                    self.units[i].start_after_stop = false;
                }
            }
        }
        self.answer_acts();
    }

    /// Answers every action whose containers settled.
    pub(super) fn answer_acts(&mut self) {
        for c in 0..self.clients.len() {
            let Some(p) = &self.clients[c].pending_act else {
                continue;
            };
            let settled = p.units.iter().all(|&i| {
                let u = &self.units[i];
                u.stop.is_none() && !u.start_after_stop
            });
            if !settled {
                continue;
            }
            let Some(mut p) = self.clients[c].pending_act.take() else {
                continue;
            };
            // A restart whose start failed says so.
            for (r, &i) in p.results.iter_mut().zip(&p.units) {
                let u = &self.units[i];
                if r.error.is_none() && u.status.state == ContainerState::Failed {
                    r.error = Some(
                        u.status
                            .reason
                            .clone()
                            .unwrap_or_else(|| "it did not start".into()),
                    );
                }
            }
            send(&mut self.clients[c], &ActReply { results: p.results });
            self.flush_client(c);
        }
    }
}
