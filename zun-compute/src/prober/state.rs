//! The kubelet's rules for one container's probes, without any I/O: when each probe is due,
//! how results in a row become a verdict, the startup probe holding the others off, and what
//! to do about it (kill the container, change its readiness). Reset whenever the container
//! starts again.

use std::time::{Duration, Instant};

use capsule_types::template::{ContainerSpec, Probe};

/// Which probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// `startupProbe`.
    Startup,
    /// `livenessProbe`.
    Liveness,
    /// `readinessProbe`.
    Readiness,
}

impl Which {
    /// As users name it.
    pub fn name(self) -> &'static str {
        match self {
            Which::Startup => "Startup",
            Which::Liveness => "Liveness",
            Which::Readiness => "Readiness",
        }
    }
}

/// One probe's run of results.
#[derive(Clone, Debug)]
struct Track {
    probe: Probe,
    due: Instant,
    passes: u32,
    fails: u32,
    /// Its verdict so far (`None`: none yet).
    verdict: Option<bool>,
}

impl Track {
    fn new(probe: &Probe, started: Instant) -> Self {
        Self {
            due: started + Duration::from_secs(probe.initial_delay_seconds.into()),
            probe: probe.clone(),
            passes: 0,
            fails: 0,
            verdict: None,
        }
    }

    /// Counts a result at `now`; the verdict when it changes.
    fn observe(&mut self, ok: bool, now: Instant) -> Option<bool> {
        self.due = now + Duration::from_secs(self.probe.period_seconds.into());
        if ok {
            self.passes += 1;
            self.fails = 0;
        } else {
            self.fails += 1;
            self.passes = 0;
        }
        let verdict = if self.passes >= self.probe.success_threshold {
            Some(true)
        } else if self.fails >= self.probe.failure_threshold {
            Some(false)
        } else {
            return None;
        };
        if verdict != self.verdict {
            self.verdict = verdict;
            return verdict;
        }
        None
    }
}

/// What the prober must do after a result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Consequence {
    /// Nothing changes.
    None,
    /// The container's readiness changed.
    Readiness(bool),
    /// The container must be killed (its liveness or startup probe failed), and why.
    Kill(String),
}

/// One container's probes.
#[derive(Clone, Debug)]
pub struct ContainerProbes {
    startup: Option<Track>,
    liveness: Option<Track>,
    readiness: Option<Track>,
    started: bool,
}

impl ContainerProbes {
    /// The probes of `c`, as for a container that started at `now`; `None` if it has none.
    pub fn new(c: &ContainerSpec, now: Instant) -> Option<Self> {
        let track = |p: &Option<Probe>| p.as_ref().map(|p| Track::new(p, now));
        let probes = Self {
            startup: track(&c.startup_probe),
            liveness: track(&c.liveness_probe),
            readiness: track(&c.readiness_probe),
            started: c.startup_probe.is_none(),
        };
        (probes.startup.is_some() || probes.liveness.is_some() || probes.readiness.is_some())
            .then_some(probes)
    }

    /// Whether it is ready (given that it runs): started, and its readiness probe passed.
    pub fn ready(&self) -> bool {
        self.started
            && self
                .readiness
                .as_ref()
                .is_none_or(|r| r.verdict == Some(true))
    }

    fn track(&self, w: Which) -> Option<&Track> {
        match w {
            Which::Startup => self.startup.as_ref(),
            Which::Liveness => self.liveness.as_ref(),
            Which::Readiness => self.readiness.as_ref(),
        }
    }

    fn track_mut(&mut self, w: Which) -> Option<&mut Track> {
        match w {
            Which::Startup => self.startup.as_mut(),
            Which::Liveness => self.liveness.as_mut(),
            Which::Readiness => self.readiness.as_mut(),
        }
    }

    /// The probes that run now: only the startup probe until it passes, then the others.
    fn active(&self) -> &'static [Which] {
        if self.started {
            &[Which::Liveness, Which::Readiness]
        } else {
            &[Which::Startup]
        }
    }

    /// The probes due at `now`, with what each does and its time limit.
    pub fn due(&self, now: Instant) -> Vec<(Which, Probe)> {
        self.active()
            .iter()
            .filter_map(|w| {
                let t = self.track(*w)?;
                (t.due <= now).then(|| (*w, t.probe.clone()))
            })
            .collect()
    }

    /// When the next probe is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.active()
            .iter()
            .filter_map(|w| self.track(*w).map(|t| t.due))
            .min()
    }

    /// Counts probe `w`'s `result` at `now`: what follows from it.
    pub fn observe(&mut self, w: Which, result: &Result<(), String>, now: Instant) -> Consequence {
        let was_ready = self.ready();
        let Some(t) = self.track_mut(w) else {
            return Consequence::None;
        };
        let fails = t.probe.failure_threshold;
        let verdict = t.observe(result.is_ok(), now);
        let why = || {
            let last = result.as_ref().err().map_or("", String::as_str);
            format!("{} probe failed {fails} times in a row: {last}", w.name())
        };
        match (w, verdict) {
            (Which::Startup, Some(true)) => {
                self.started = true;
                // The others start counting now.
                for t in [&mut self.liveness, &mut self.readiness]
                    .into_iter()
                    .flatten()
                {
                    t.due = now;
                }
            }
            (Which::Startup | Which::Liveness, Some(false)) => return Consequence::Kill(why()),
            _ => {}
        }
        if self.ready() != was_ready {
            Consequence::Readiness(self.ready())
        } else {
            Consequence::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capsule_types::template::ProbeAction;

    fn probe(delay: u32, period: u32, fails: u32, passes: u32) -> Probe {
        Probe {
            action: ProbeAction::TcpSocket { port: 80 },
            initial_delay_seconds: delay,
            period_seconds: period,
            timeout_seconds: 1,
            failure_threshold: fails,
            success_threshold: passes,
        }
    }

    fn container(
        startup: Option<Probe>,
        liveness: Option<Probe>,
        readiness: Option<Probe>,
    ) -> ContainerSpec {
        let mut c = ContainerSpec::new("busybox");
        c.startup_probe = startup;
        c.liveness_probe = liveness;
        c.readiness_probe = readiness;
        c
    }

    const OK: Result<(), String> = Ok(());

    fn bad() -> Result<(), String> {
        Err("connection refused".into())
    }

    #[test]
    fn no_probes_no_prober() {
        assert!(ContainerProbes::new(&container(None, None, None), Instant::now()).is_none());
    }

    #[test]
    fn liveness_kills_after_its_failure_threshold_in_a_row() {
        let t0 = Instant::now();
        let mut p =
            ContainerProbes::new(&container(None, Some(probe(5, 2, 3, 1)), None), t0).unwrap();
        assert!(p.ready(), "no readiness probe: ready once started");
        assert!(p.due(t0).is_empty(), "initial delay");
        let t = t0 + Duration::from_secs(5);
        assert_eq!(p.due(t).len(), 1);
        assert_eq!(p.observe(Which::Liveness, &bad(), t), Consequence::None);
        assert_eq!(p.next_due(), Some(t + Duration::from_secs(2)));
        assert_eq!(p.observe(Which::Liveness, &bad(), t), Consequence::None);
        // A success in between starts the count again.
        assert_eq!(p.observe(Which::Liveness, &OK, t), Consequence::None);
        assert_eq!(p.observe(Which::Liveness, &bad(), t), Consequence::None);
        assert_eq!(p.observe(Which::Liveness, &bad(), t), Consequence::None);
        assert_eq!(
            p.observe(Which::Liveness, &bad(), t),
            Consequence::Kill("Liveness probe failed 3 times in a row: connection refused".into())
        );
    }

    #[test]
    fn readiness_flips_both_ways_by_its_thresholds() {
        let t = Instant::now();
        let mut p =
            ContainerProbes::new(&container(None, None, Some(probe(0, 1, 2, 2))), t).unwrap();
        assert!(!p.ready(), "not ready before the probe passed");
        assert_eq!(p.observe(Which::Readiness, &OK, t), Consequence::None);
        assert_eq!(
            p.observe(Which::Readiness, &OK, t),
            Consequence::Readiness(true)
        );
        assert_eq!(p.observe(Which::Readiness, &bad(), t), Consequence::None);
        assert_eq!(
            p.observe(Which::Readiness, &bad(), t),
            Consequence::Readiness(false)
        );
        assert_eq!(p.observe(Which::Readiness, &bad(), t), Consequence::None);
    }

    #[test]
    fn a_startup_probe_holds_the_others_off_until_it_passes() {
        let t = Instant::now();
        let mut p = ContainerProbes::new(
            &container(
                Some(probe(0, 1, 3, 1)),
                Some(probe(0, 1, 1, 1)),
                Some(probe(0, 1, 1, 1)),
            ),
            t,
        )
        .unwrap();
        assert_eq!(
            p.due(t).iter().map(|d| d.0).collect::<Vec<_>>(),
            [Which::Startup]
        );
        assert!(!p.ready());
        assert_eq!(p.observe(Which::Startup, &bad(), t), Consequence::None);
        let t1 = t + Duration::from_secs(1);
        assert_eq!(p.observe(Which::Startup, &OK, t1), Consequence::None);
        assert_eq!(
            p.due(t1).iter().map(|d| d.0).collect::<Vec<_>>(),
            [Which::Liveness, Which::Readiness]
        );
        assert_eq!(
            p.observe(Which::Readiness, &OK, t1),
            Consequence::Readiness(true)
        );
    }

    #[test]
    fn a_startup_probe_that_never_passes_kills() {
        let t = Instant::now();
        let mut p =
            ContainerProbes::new(&container(Some(probe(0, 1, 2, 1)), None, None), t).unwrap();
        assert_eq!(p.observe(Which::Startup, &bad(), t), Consequence::None);
        assert!(matches!(
            p.observe(Which::Startup, &bad(), t),
            Consequence::Kill(why) if why.starts_with("Startup probe failed 2 times")
        ));
    }
}
