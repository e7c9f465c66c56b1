/*
 * capsule-pause: PID 1 of a capsule's sandbox.
 *
 * It holds the capsule's namespaces open, reaps every process re-parented to it (orphans of
 * the containers that share its PID namespace) and exits 0 on SIGTERM or SIGINT. All signals
 * stay blocked and are taken synchronously with sigwaitinfo(2): a blocked signal is queued
 * even for a namespace init, which has no handler, so nothing is lost between two waits.
 */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void reap_all(void)
{
	for (;;) {
		pid_t pid = waitpid(-1, NULL, WNOHANG);
		if (pid > 0)
			continue;
		if (pid < 0 && errno == EINTR)
			continue;
		return; /* 0: children left but none dead; -1 ECHILD: no children */
	}
}

int main(void)
{
	sigset_t all;
	siginfo_t info;

	if (sigfillset(&all) != 0 || sigprocmask(SIG_BLOCK, &all, NULL) != 0) {
		static const char msg[] = "pause: cannot block signals\n";
		(void)!write(2, msg, sizeof msg - 1);
		return 1;
	}
	for (;;) {
		int sig = sigwaitinfo(&all, &info);
		if (sig < 0)
			continue; /* EINTR */
		switch (sig) {
		case SIGCHLD:
			reap_all();
			break;
		case SIGTERM:
		case SIGINT:
			return 0;
		default:
			break;
		}
	}
}
