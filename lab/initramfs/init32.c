// SPDX-License-Identifier: GPL-2.0
/*
 * init32: the guest init of the lab's i386 boot (lab/check.py, part i386).
 *
 * The lab's busybox is 64-bit, which a 32-bit kernel cannot run, so this
 * static 32-bit program does what lab/initramfs/init and a plan do: it
 * writes KTAP and "LAB key=value" lines to the results channel (ttyS1) and
 * reports its verdict through QEMU's isa-debug-exit device (QEMU exits 33
 * when every test passed, 35 otherwise).  The tests:
 *
 *   nmi_backtrace  sysrq-l sends NMI IPIs: every other CPU's NMI count rises
 *   host_nmis      "LAB host_nmi=on" asks the host (vm.py --nmi-gate) for QMP
 *                  inject-nmi; CPU 0's NMI count must rise by lab.storm_nmis
 *                  within lab.storm_timeout seconds; "LAB host_nmi=off" ends
 *                  the storm and the count must settle
 *   torture        nmi_torture.ko with lab.torture= parameters (':' between
 *                  them), its debugfs results copied as TORTURE_KV lines
 *   kunit          the built-in KUnit suites (the series' dispatcher tests):
 *                  no "not ok" in /sys/kernel/debug/kunit/<suite>/results
 *
 * The console markers "lab: host NMI storm on/off" go through /dev/kmsg, so
 * that they are ordered with the kernel's own lines: the host allows the
 * host NMIs' "unknown reason" lines only between them.
 *
 * Build: gcc -m32 -static -O2 -o init init32.c
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define MAXCPU		64
#define TORTURE_KO	"/lib/modules/nmi_torture.ko"
#define TORTURE_DIR	"/sys/kernel/debug/nmi_torture"
#define NMI_STATS	"/sys/kernel/debug/x86/nmi_stats"

static int res_fd = -1;
static char cmdline[4096];
static int ntests;

/* One line to the results channel. */
static void out(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (res_fd >= 0 && write(res_fd, buf, n) < 0)
		res_fd = -1;
}

/* One line to the kernel log (and so to the console, in order). */
static void say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int fd, n;

	n = snprintf(buf, sizeof(buf), "lab: ");
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	fd = open("/dev/kmsg", O_WRONLY);	/* one open a line: no rate limit */
	if (fd < 0 || write(fd, buf, n) < 0)
		(void)!write(1, buf, n);
	if (fd >= 0)
		close(fd);
}

static void ktap(int ok, const char *name, const char *fmt, ...)
{
	char note[512] = "";
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(note, sizeof(note), fmt, ap);
	va_end(ap);
	ntests++;
	if (!strncmp(note, "SKIP", 4)) {
		out("ok %d %s # %s", ntests, name, note);
	} else {
		if (note[0])
			out("# %s: %s", name, note);
		out("%s %d %s", ok ? "ok" : "not ok", ntests, name);
	}
	say("%s %s%s%s", ok ? "PASS" : "FAIL", name, note[0] ? ": " : "", note);
}

/* The value of key= on the kernel command line, or def. */
static const char *arg(const char *key, const char *def)
{
	static char val[256];
	size_t kl = strlen(key);
	char *p = cmdline;

	while ((p = strstr(p, key))) {
		if ((p == cmdline || p[-1] == ' ') && p[kl] == '=') {
			size_t n = strcspn(p + kl + 1, " \n");

			if (n >= sizeof(val))
				n = sizeof(val) - 1;
			memcpy(val, p + kl + 1, n);
			val[n] = 0;
			return val;
		}
		p += kl;
	}
	return def;
}

static ssize_t read_file(const char *path, char *buf, size_t size)
{
	ssize_t n, len = 0;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -1;
	while (len < (ssize_t)size - 1 && (n = read(fd, buf + len, size - 1 - len)) > 0)
		len += n;
	close(fd);
	buf[len] = 0;
	return len;
}

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);
	int ok;

	if (fd < 0)
		return -1;
	ok = write(fd, s, strlen(s)) == (ssize_t)strlen(s);
	close(fd);
	return ok ? 0 : -1;
}

/* Per-CPU NMI counts from /proc/interrupts; returns the number of CPUs. */
static int nmi_counts(unsigned long long *c)
{
	static char buf[65536];
	char *p, *end;
	int n = 0;

	if (read_file("/proc/interrupts", buf, sizeof(buf)) < 0)
		return 0;
	p = strstr(buf, "NMI:");
	if (!p)
		return 0;
	p += 4;
	while (n < MAXCPU) {
		unsigned long long v = strtoull(p, &end, 10);

		if (end == p)
			break;
		c[n++] = v;
		p = end;
	}
	return n;
}

static unsigned long long nmi_total(void)
{
	unsigned long long c[MAXCPU], s = 0;
	int i, n = nmi_counts(c);

	for (i = 0; i < n; i++)
		s += c[i];
	return s;
}

static void msleep(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Copy a multi-line file to the results channel, each line prefixed. */
static void copy_lines(const char *path, const char *prefix)
{
	static char buf[16384];
	char *line, *save;

	if (read_file(path, buf, sizeof(buf)) < 0)
		return;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		out("%s%s", prefix, line);
}

static void stats_snap(const char *tag)
{
	char prefix[64];

	snprintf(prefix, sizeof(prefix), "NMISTATS %s ", tag);
	copy_lines(NMI_STATS, prefix);
}

/* sysrq-l: NMI backtraces of all CPUs, sent as NMI IPIs. */
static int test_nmi_backtrace(void)
{
	unsigned long long a[MAXCPU], b[MAXCPU];
	int i, n, rose = 0;

	n = nmi_counts(a);
	if (write_file("/proc/sysrq-trigger", "l") < 0) {
		ktap(0, "nmi_backtrace", "cannot write /proc/sysrq-trigger");
		return 1;
	}
	for (i = 0; i < 50 && rose < n - 1; i++) {
		int cpu;

		msleep(100);
		nmi_counts(b);
		for (rose = 0, cpu = 0; cpu < n; cpu++)
			rose += b[cpu] > a[cpu];
	}
	out("LAB sysrq_l=1 backtrace_cpus=%d", rose);
	/* The CPU that writes sysrq-l prints its own backtrace without an NMI. */
	ktap(rose >= n - 1, "nmi_backtrace", "NMI count rose on %d of %d CPUs", rose, n);
	return rose >= n - 1 ? 0 : 1;
}

/* The host's QMP inject-nmi storm, between two results-channel lines. */
static int test_host_nmis(void)
{
	int want = atoi(arg("lab.storm_nmis", "100"));
	double limit = atof(arg("lab.storm_timeout", "60"));
	unsigned long long c[MAXCPU], before, last, cur;
	double t0, t;
	int ok;

	nmi_counts(c);
	before = c[0];
	stats_snap("storm_before");
	say("host NMI storm on");
	out("LAB host_nmi=on");
	t0 = now();
	do {
		msleep(100);
		nmi_counts(c);
	} while (c[0] - before < (unsigned long long)want && now() - t0 < limit);
	t = now() - t0;
	out("LAB host_nmi=off");
	/* The host stops within a second; wait until CPU 0's count settles. */
	last = c[0];
	for (int quiet = 0, i = 0; quiet < 10 && i < 100; i++) {
		msleep(200);
		nmi_counts(c);
		cur = c[0];
		quiet = cur == last ? quiet + 1 : 0;
		last = cur;
	}
	say("host NMI storm off");
	stats_snap("storm_after");
	out("LAB storm_nmis=%llu storm_seconds=%.1f", last - before, t);
	ok = last - before >= (unsigned long long)want;
	ktap(ok, "host_nmis", "CPU 0 counted %llu NMIs in %.1f s (want %d)",
	     last - before, t, want);
	return ok ? 0 : 1;
}

/* nmi_torture.ko through finit_module(2); its results as TORTURE_KV lines. */
static int test_torture(void)
{
	char params[512], state[64], res[16384], *p;
	int fd, i, limit, ret;

	if (access(TORTURE_KO, R_OK)) {
		out("LAB torture=absent");
		ktap(1, "torture", "SKIP no nmi_torture.ko in the initramfs");
		return 0;
	}
	/* As plans/lib-torture.sh: the module's and the kernel's defaults. */
	snprintf(params, sizeof(params), "%s start=1",
		 arg("lab.torture", "duration=10:hazards=all"));
	for (p = params; *p; p++)
		if (*p == ':')
			*p = ' ';
	stats_snap("before");
	fd = open(TORTURE_KO, O_RDONLY | O_CLOEXEC);
	ret = fd < 0 ? -1 : syscall(SYS_finit_module, fd, params, 0);
	if (fd >= 0)
		close(fd);
	if (ret) {
		out("LAB torture=insmod-failed errno=%d", errno);
		ktap(0, "torture", "finit_module: %s", strerror(errno));
		return 1;
	}
	say("torture: %s", params);
	p = strstr(params, "duration=");
	limit = (p ? atoi(p + 9) : 10) + 300;
	for (i = 0; i < limit; i++) {
		if (read_file(TORTURE_DIR "/control", state, sizeof(state)) < 0 ||
		    strncmp(state, "running", 7))
			break;
		msleep(1000);
	}
	stats_snap("after");
	read_file(TORTURE_DIR "/results", res, sizeof(res));
	copy_lines(TORTURE_DIR "/results", "TORTURE_KV ");
	if (syscall(SYS_delete_module, "nmi_torture", O_NONBLOCK))
		out("LAB torture=rmmod-failed");
	p = strstr(res, "TORTURE ");
	if (p)
		p[strcspn(p, "\n")] = 0;
	ret = p && strstr(p, "verdict=PASS");
	ktap(ret, "torture", "%s", p ? p : state);
	return ret ? 0 : 1;
}

/* KUnit suites ran at boot; their results are in debugfs. */
static int test_kunit(void)
{
	static char buf[65536];
	char path[512], *line, *save;
	int suites = 0, ok = 0, bad = 0;
	struct dirent *e;
	DIR *d = opendir("/sys/kernel/debug/kunit");

	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/kernel/debug/kunit/%s/results", e->d_name);
		if (read_file(path, buf, sizeof(buf)) < 0)
			continue;
		suites++;
		/* KTAP: the suite's line and its tests' (indented) lines. */
		for (line = strtok_r(buf, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save)) {
			line += strspn(line, " \t");
			if (!strncmp(line, "not ok ", 7))
				bad++;
			else if (!strncmp(line, "ok ", 3))
				ok++;
		}
	}
	if (d)
		closedir(d);
	if (!suites) {
		ktap(1, "kunit", "SKIP no KUnit suite in debugfs");
		return 0;
	}
	out("LAB kunit_suites=%d kunit_ok=%d kunit_not_ok=%d", suites, ok, bad);
	ktap(!bad, "kunit", "%d suites: %d ok, %d not ok", suites, ok, bad);
	return bad ? 1 : 0;
}

int main(void)
{
	struct termios tio;
	int rc = 0, fd;
	char code;

	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
	read_file("/proc/cmdline", cmdline, sizeof(cmdline));

	res_fd = open("/dev/ttyS1", O_WRONLY | O_NOCTTY);
	if (res_fd >= 0 && !tcgetattr(res_fd, &tio)) {
		cfmakeraw(&tio);
		cfsetspeed(&tio, B115200);
		tcsetattr(res_fd, TCSANOW, &tio);
	}
	say("running plan 'i386' (init32)");
	out("LAB plan=i386");
	out("LAB nmis_before=%llu", nmi_total());
	{
		unsigned long long c[MAXCPU];

		out("LAB cpus=%d", nmi_counts(c));
	}
	out("1..4");
	rc |= test_nmi_backtrace();
	rc |= test_host_nmis();
	rc |= test_torture();
	rc |= test_kunit();
	out("LAB nmis_after=%llu", nmi_total());
	out("LAB end rc=%d", rc);
	if (res_fd >= 0)
		tcdrain(res_fd);
	say("plan 'i386' finished rc=%d", rc);
	sync();

	/* isa-debug-exit at 0xf4: 0x10 -> QEMU exits 33 (pass), 0x11 -> 35. */
	code = rc ? 0x11 : 0x10;
	fd = open("/dev/port", O_WRONLY);
	if (fd >= 0 && lseek(fd, 0xf4, SEEK_SET) == 0xf4)
		(void)!write(fd, &code, 1);
	reboot(RB_POWER_OFF);
	for (;;)
		pause();
}
