// emupanel's init for the Linux guest: PID 1 of the initramfs and a small shell on the
// console. It is freestanding (raw system calls, no libc) and built for RV64IMAC with the
// soft-float ABI, because the core has no F/D and Debian's riscv64 C library is built for
// the hard-float ABI (its setjmp alone saves FP registers). The kernel's tty does line
// editing and echo; this reads whole lines.

typedef unsigned long size_t;
typedef long ssize_t;

// asm-generic/unistd.h numbers (RISC-V uses the generic table).
enum {
    SYS_getcwd = 17, SYS_ioctl = 29, SYS_mkdirat = 34, SYS_unlinkat = 35, SYS_umount2 = 39, SYS_mount = 40,
    SYS_chdir = 49, SYS_openat = 56, SYS_close = 57, SYS_getdents64 = 61, SYS_read = 63,
    SYS_write = 64, SYS_ppoll = 73, SYS_sync = 81, SYS_exit = 93, SYS_nanosleep = 101, SYS_reboot = 142,
    SYS_uname = 160,
};
enum { AT_FDCWD = -100, AT_REMOVEDIR = 0x200 };
enum { O_RDONLY = 0, O_WRONLY = 1, O_CREAT = 0100, O_TRUNC = 01000, O_APPEND = 02000, O_DIRECTORY = 0200000 };
enum { REBOOT_MAGIC1 = (int)0xfee1dead, REBOOT_MAGIC2 = 672274793, REBOOT_RESTART = 0x01234567,
       REBOOT_POWER_OFF = 0x4321fedc };

static long syscall6(long n, long a, long b, long c, long d, long e, long f) {
    register long a0 __asm__("a0") = a;
    register long a1 __asm__("a1") = b;
    register long a2 __asm__("a2") = c;
    register long a3 __asm__("a3") = d;
    register long a4 __asm__("a4") = e;
    register long a5 __asm__("a5") = f;
    register long a7 __asm__("a7") = n;
    __asm__ volatile("ecall" : "+r"(a0) : "r"(a1), "r"(a2), "r"(a3), "r"(a4), "r"(a5), "r"(a7) : "memory");
    return a0;
}
#define SYS(n, a, b, c, d) syscall6(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

// The compiler may call these for struct copies and initialisers.
void *memset(void *d, int c, size_t n) { unsigned char *p = d; while (n--) *p++ = (unsigned char)c; return d; }
void *memcpy(void *d, const void *s, size_t n) {
    unsigned char *p = d; const unsigned char *q = s; while (n--) *p++ = *q++; return d;
}

static size_t length(const char *s) { size_t n = 0; while (s[n]) n++; return n; }
static int same(const char *a, const char *b) {
    while (*a && *a == *b) { a++; b++; }
    return *a == *b;
}

static int out = 1;   // where command output goes (a redirection changes it)

static void put(int fd, const char *s) {
    size_t n = length(s);
    while (n > 0) {
        long w = SYS(SYS_write, fd, s, n, 0);
        if (w <= 0) return;
        s += w; n -= (size_t)w;
    }
}
static void say(const char *s) { put(out, s); }

static void putNumber(int fd, long v) {
    char buf[24]; int i = sizeof buf - 1;
    int negative = v < 0;
    unsigned long u = negative ? (unsigned long)-v : (unsigned long)v;
    buf[i] = 0;
    do { buf[--i] = (char)('0' + u % 10); u /= 10; } while (u);
    if (negative) buf[--i] = '-';
    put(fd, buf + i);
}

/// "name: what failed (errno N)" on the console, never into a redirected file.
static void fail(const char *name, const char *what, long error) {
    put(2, name); put(2, ": "); put(2, what);
    put(2, " (errno "); putNumber(2, -error); put(2, ")\n");
}

// MARK: commands

static int cmdHelp(int argc, char **argv) {
    (void)argc; (void)argv;
    say("commands: echo [TEXT] [> FILE | >> FILE], cat FILE..., ls [DIR], mkdir DIR, rm FILE,\n"
        "          rmdir DIR, cd DIR, pwd, mount DEV DIR [TYPE], umount DIR, sync, uname,\n"
        "          sleep SECONDS, top, vi FILE, reboot, poweroff, help\n");
    return 0;
}

static int cmdEcho(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (i > 1) say(" ");
        say(argv[i]);
    }
    say("\n");
    return 0;
}

static int cmdCat(int argc, char **argv) {
    static char buf[4096];
    int status = 0;
    for (int i = 1; i < argc; i++) {
        long fd = SYS(SYS_openat, AT_FDCWD, argv[i], O_RDONLY, 0);
        if (fd < 0) { fail("cat", argv[i], fd); status = 1; continue; }
        long n;
        while ((n = SYS(SYS_read, fd, buf, sizeof buf, 0)) > 0) {
            long done = 0;
            while (done < n) {
                long w = SYS(SYS_write, out, buf + done, n - done, 0);
                if (w <= 0) break;
                done += w;
            }
        }
        if (n < 0) { fail("cat", argv[i], n); status = 1; }
        SYS(SYS_close, fd, 0, 0, 0);
    }
    return status;
}

struct dirent64 { unsigned long ino; long off; unsigned short reclen; unsigned char type; char name[]; };

static int cmdLs(int argc, char **argv) {
    static char buf[4096];
    const char *dir = argc > 1 ? argv[1] : ".";
    long fd = SYS(SYS_openat, AT_FDCWD, dir, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0) { fail("ls", dir, fd); return 1; }
    long n;
    while ((n = SYS(SYS_getdents64, fd, buf, sizeof buf, 0)) > 0) {
        for (long at = 0; at < n;) {
            struct dirent64 *d = (struct dirent64 *)(buf + at);
            if (!same(d->name, ".") && !same(d->name, "..")) {
                say(d->name);
                if (d->type == 4) say("/");
                say("\n");
            }
            at += d->reclen;
        }
    }
    SYS(SYS_close, fd, 0, 0, 0);
    if (n < 0) { fail("ls", dir, n); return 1; }
    return 0;
}

static int pathCall(const char *name, int argc, char **argv, long number, long extra) {
    if (argc < 2) { put(2, name); put(2, ": missing operand\n"); return 1; }
    long r = number == SYS_chdir ? SYS(number, argv[1], 0, 0, 0) : SYS(number, AT_FDCWD, argv[1], extra, 0);
    if (r < 0) { fail(name, argv[1], r); return 1; }
    return 0;
}
static int cmdMkdir(int argc, char **argv) { return pathCall("mkdir", argc, argv, SYS_mkdirat, 0755); }
static int cmdRm(int argc, char **argv) { return pathCall("rm", argc, argv, SYS_unlinkat, 0); }
static int cmdRmdir(int argc, char **argv) { return pathCall("rmdir", argc, argv, SYS_unlinkat, AT_REMOVEDIR); }
static int cmdCd(int argc, char **argv) { return pathCall("cd", argc, argv, SYS_chdir, 0); }

static int cmdPwd(int argc, char **argv) {
    (void)argc; (void)argv;
    static char buf[256];
    long r = SYS(SYS_getcwd, buf, sizeof buf, 0, 0);
    if (r < 0) { fail("pwd", ".", r); return 1; }
    say(buf); say("\n");
    return 0;
}

static int cmdMount(int argc, char **argv) {
    if (argc < 3) { put(2, "mount: usage: mount DEV DIR [TYPE]\n"); return 1; }
    const char *type = argc > 3 ? argv[3] : "ext4";
    long r = syscall6(SYS_mount, (long)argv[1], (long)argv[2], (long)type, 0, 0, 0);
    if (r < 0) { fail("mount", argv[1], r); return 1; }
    return 0;
}

static int cmdUmount(int argc, char **argv) {
    if (argc < 2) { put(2, "umount: missing operand\n"); return 1; }
    long r = SYS(SYS_umount2, argv[1], 0, 0, 0);
    if (r < 0) { fail("umount", argv[1], r); return 1; }
    return 0;
}

static int cmdSync(int argc, char **argv) { (void)argc; (void)argv; SYS(SYS_sync, 0, 0, 0, 0); return 0; }

struct utsname { char sysname[65], nodename[65], release[65], version[65], machine[65], domain[65]; };

static int cmdUname(int argc, char **argv) {
    (void)argc; (void)argv;
    static struct utsname u;
    SYS(SYS_uname, &u, 0, 0, 0);
    say(u.sysname); say(" "); say(u.release); say(" "); say(u.machine); say("\n");
    return 0;
}

static int cmdSleep(int argc, char **argv) {
    long seconds = 0;
    for (const char *p = argc > 1 ? argv[1] : "1"; *p >= '0' && *p <= '9'; p++) seconds = seconds * 10 + (*p - '0');
    long ts[2] = { seconds, 0 };
    SYS(SYS_nanosleep, ts, 0, 0, 0);
    return 0;
}

static int powerDown(long how) {
    SYS(SYS_sync, 0, 0, 0, 0);
    long r = SYS(SYS_reboot, REBOOT_MAGIC1, REBOOT_MAGIC2, how, 0);
    fail("reboot", "the kernel refused", r);
    return 1;
}
static int cmdReboot(int argc, char **argv) { (void)argc; (void)argv; return powerDown(REBOOT_RESTART); }
static int cmdPoweroff(int argc, char **argv) { (void)argc; (void)argv; return powerDown(REBOOT_POWER_OFF); }

// MARK: top, a full-screen program

// asm-generic termbits: what `top` changes to read keys one at a time without echo.
struct termios { unsigned int iflag, oflag, cflag, lflag; unsigned char line, cc[19]; };
enum { TCGETS = 0x5401, TCSETS = 0x5402, TIOCGWINSZ = 0x5413, ICANON = 02, ECHO = 010, VTIME = 5, VMIN = 6 };
struct winsize { unsigned short rows, cols, xpixel, ypixel; };
struct pollfd { int fd; short events, revents; };

/// The first line of a small /proc file, without its newline.
static void readLine(const char *path, char *buf, long size) {
    buf[0] = 0;
    long fd = SYS(SYS_openat, AT_FDCWD, path, O_RDONLY, 0);
    if (fd < 0) return;
    long n = SYS(SYS_read, fd, buf, size - 1, 0);
    SYS(SYS_close, fd, 0, 0, 0);
    if (n < 0) n = 0;
    buf[n] = 0;
    for (long i = 0; i < n; i++) if (buf[i] == '\n') { buf[i] = 0; break; }
}

/// Text padded or cut to `width` columns.
static void column(const char *s, int width) {
    char cell[64];
    int i = 0;
    for (; s[i] && i < width && i < 63; i++) cell[i] = s[i];
    for (; i < width && i < 63; i++) cell[i] = ' ';
    cell[i] = 0;
    put(1, cell);
}

/// One screen: a reverse-video title, uptime and load, memory, then a process per row, each
/// line cleared to its end and the rest of the screen below (cursor addressing, not scrolling).
static void drawTop(int rows, int cols, long frame) {
    static char buf[512];
    put(1, "\033[H\033[7m");
    column(" top - emupanel Linux guest                          q quits", cols);
    put(1, "\033[0m\033[K\n");
    readLine("/proc/uptime", buf, sizeof buf);
    put(1, "up (s), idle (s): "); put(1, buf);
    readLine("/proc/loadavg", buf, sizeof buf);
    put(1, "   load: "); put(1, buf);
    put(1, "   frame "); putNumber(1, frame); put(1, "\033[K\n");
    readLine("/proc/meminfo", buf, sizeof buf);
    put(1, buf); put(1, "\033[K\n\033[K\n\033[1m");
    column("  PID", 7); column("S", 3); column("COMMAND", 20);
    put(1, "\033[0m\033[K\n");
    int row = 5;
    static char dirents[4096];
    long dir = SYS(SYS_openat, AT_FDCWD, "/proc", O_RDONLY | O_DIRECTORY, 0);
    long n;
    while (dir >= 0 && (n = SYS(SYS_getdents64, dir, dirents, sizeof dirents, 0)) > 0) {
        for (long at = 0; at < n && row < rows; at += ((struct dirent64 *)(dirents + at))->reclen) {
            struct dirent64 *d = (struct dirent64 *)(dirents + at);
            if (d->name[0] < '0' || d->name[0] > '9') continue;
            char path[64] = "/proc/";
            size_t len = 6;
            for (const char *q = d->name; *q && len < 50; q++) path[len++] = *q;
            memcpy(path + len, "/stat", 6);
            readLine(path, buf, sizeof buf);
            // "PID (comm) S ...": the name between the parentheses, the state after them.
            char *open = buf, *close = buf;
            while (*open && *open != '(') open++;
            for (char *q = buf; *q; q++) if (*q == ')') close = q;
            if (!*open || close <= open) continue;
            *close = 0;
            char state[2] = { close[2] ? close[2] : '?', 0 };
            for (size_t pad = length(d->name); pad < 5; pad++) put(1, " ");
            put(1, d->name);
            put(1, "  "); column(state, 3); column(open + 1, 20);
            put(1, "\033[K\n");
            row++;
        }
    }
    if (dir >= 0) SYS(SYS_close, dir, 0, 0, 0);
    put(1, "\033[J");
}

/// Keys one at a time, unechoed, for a full-screen program; returns whether `saved` holds the
/// settings to put back.
static int rawKeys(struct termios *saved) {
    if (SYS(SYS_ioctl, 0, TCGETS, saved, 0) != 0) return 0;
    struct termios raw = *saved;
    raw.lflag &= ~(unsigned int)(ICANON | ECHO);
    raw.cc[VMIN] = 1; raw.cc[VTIME] = 0;
    SYS(SYS_ioctl, 0, TCSETS, &raw, 0);
    return 1;
}

/// The terminal's size (the browser's terminal tells the tty when it is resized).
static void screenSize(int *rows, int *cols) {
    struct winsize size = { 0, 0, 0, 0 };
    SYS(SYS_ioctl, 1, TIOCGWINSZ, &size, 0);
    *rows = size.rows ? size.rows : 24;
    *cols = size.cols ? size.cols : 80;
}

/// Whether a key arrives within `ms` milliseconds.
static int keyWithin(long ms) {
    struct pollfd in = { 0, 1, 0 };
    long timeout[2] = { ms / 1000, (ms % 1000) * 1000000 };
    return syscall6(SYS_ppoll, (long)&in, 1, (long)timeout, 0, 8, 0) > 0;
}

static int cmdTop(int argc, char **argv) {
    (void)argc; (void)argv;
    struct termios saved;
    int haveTerm = rawKeys(&saved);
    int rows, cols;
    screenSize(&rows, &cols);
    put(1, "\033[?25l\033[2J");
    for (long frame = 1;; frame++) {
        drawTop(rows, cols, frame);
        if (keyWithin(1000)) {
            char key;
            if (SYS(SYS_read, 0, &key, 1, 0) == 1 && (key == 'q' || key == 'Q' || key == 3)) break;
        }
    }
    put(1, "\033[?25h\033[2J\033[H");
    if (haveTerm) SYS(SYS_ioctl, 0, TCSETS, &saved, 0);
    return 0;
}

// MARK: vi, a small full-screen editor

// A subset of vi, enough to edit a file on the guest's disk and to show full-screen editing in
// the browser's terminal: h j k l and the arrows, 0 $ G, i a A o O, x, dd, Esc, and :w :q :wq
// :x :q!. Lines longer than the buffer's width are cut when the file is read.
enum { VI_LINES = 512, VI_WIDTH = 256 };
static char viText[VI_LINES][VI_WIDTH];
static int viLength[VI_LINES];
static struct { int count, row, col, top, changed, inserting; const char *path; char message[80]; } vi;

static void viSay(const char *a, const char *b) {
    size_t n = 0;
    for (const char *p = a; *p && n < sizeof vi.message - 1; p++) vi.message[n++] = *p;
    for (const char *p = b; p && *p && n < sizeof vi.message - 1; p++) vi.message[n++] = *p;
    vi.message[n] = 0;
}

static void viLoad(void) {
    static char file[VI_LINES * 80];
    vi.count = 1; viLength[0] = 0;
    long fd = SYS(SYS_openat, AT_FDCWD, vi.path, O_RDONLY, 0);
    if (fd < 0) { viSay("new file", 0); return; }
    long n = SYS(SYS_read, fd, file, sizeof file, 0);
    SYS(SYS_close, fd, 0, 0, 0);
    vi.count = 0;
    for (long at = 0; at < n && vi.count < VI_LINES;) {
        int len = 0;
        while (at < n && file[at] != '\n') { if (len < VI_WIDTH - 1) viText[vi.count][len++] = file[at]; at++; }
        viLength[vi.count++] = len;
        at++;
    }
    if (vi.count == 0) { vi.count = 1; viLength[0] = 0; }
}

static int viSave(void) {
    long fd = SYS(SYS_openat, AT_FDCWD, vi.path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { viSay("cannot write ", vi.path); return 0; }
    for (int i = 0; i < vi.count; i++) {
        SYS(SYS_write, fd, viText[i], viLength[i], 0);
        SYS(SYS_write, fd, "\n", 1, 0);
    }
    SYS(SYS_close, fd, 0, 0, 0);
    vi.changed = 0;
    viSay("written: ", vi.path);
    return 1;
}

/// The text from the top line down, "~" past the end, then the status line, and the cursor.
static void viDraw(int rows, int cols, const char *command) {
    if (vi.row < vi.top) vi.top = vi.row;
    if (vi.row >= vi.top + rows - 1) vi.top = vi.row - rows + 2;
    put(1, "\033[H");
    for (int r = 0; r < rows - 1; r++) {
        int line = vi.top + r;
        if (line < vi.count) {
            int n = viLength[line] < cols ? viLength[line] : cols;
            SYS(SYS_write, 1, viText[line], n, 0);
        } else {
            put(1, "~");
        }
        put(1, "\033[K\r\n");
    }
    if (command) { put(1, ":"); put(1, command); }
    else if (vi.message[0]) put(1, vi.message);
    else if (vi.inserting) put(1, "-- INSERT --");
    else { put(1, "\""); put(1, vi.path); put(1, "\" "); putNumber(1, vi.count); put(1, vi.count == 1 ? " line" : " lines"); }
    put(1, "\033[K");
    put(1, "\033[");
    if (command) { putNumber(1, rows); put(1, ";"); putNumber(1, (long)length(command) + 2); }
    else { putNumber(1, vi.row - vi.top + 1); put(1, ";"); putNumber(1, (vi.col < cols ? vi.col : cols - 1) + 1); }
    put(1, "H");
}

/// A key, with the arrows' escape sequences read as 'h' 'j' 'k' 'l' marked by 0x100.
static int viKey(void) {
    unsigned char c;
    if (SYS(SYS_read, 0, &c, 1, 0) != 1) return -1;
    if (c != 27 || !keyWithin(30)) return c;
    unsigned char seq[2];
    if (SYS(SYS_read, 0, &seq[0], 1, 0) != 1 || seq[0] != '[' || SYS(SYS_read, 0, &seq[1], 1, 0) != 1) return 27;
    switch (seq[1]) {
    case 'A': return 0x100 | 'k';
    case 'B': return 0x100 | 'j';
    case 'C': return 0x100 | 'l';
    case 'D': return 0x100 | 'h';
    default: return 27;
    }
}

static void viOpenLine(int at) {
    if (vi.count >= VI_LINES) return;
    for (int i = vi.count; i > at; i--) { memcpy(viText[i], viText[i - 1], VI_WIDTH); viLength[i] = viLength[i - 1]; }
    viLength[at] = 0;
    vi.count++;
    vi.row = at; vi.col = 0; vi.inserting = 1; vi.changed = 1;
}

static void viRemoveLine(int at) {
    for (int i = at; i < vi.count - 1; i++) { memcpy(viText[i], viText[i + 1], VI_WIDTH); viLength[i] = viLength[i + 1]; }
    vi.count--;
}

static void viInsert(int key) {
    char *line = viText[vi.row];
    int *len = &viLength[vi.row];
    if (key == '\r' || key == '\n') {
        if (vi.count >= VI_LINES) return;
        int tail = *len - vi.col;
        viOpenLine(vi.row + 1);
        memcpy(viText[vi.row], line + vi.col, (size_t)tail);
        viLength[vi.row] = tail;
        *len -= tail;
    } else if (key == 127 || key == 8) {
        if (vi.col > 0) {
            for (int i = vi.col - 1; i < *len - 1; i++) line[i] = line[i + 1];
            (*len)--; vi.col--;
        } else if (vi.row > 0 && viLength[vi.row - 1] + *len < VI_WIDTH) {
            int above = vi.row - 1;
            vi.col = viLength[above];
            memcpy(viText[above] + vi.col, line, (size_t)*len);
            viLength[above] += *len;
            viRemoveLine(vi.row);
            vi.row = above;
        }
    } else if (key >= ' ' && key < 127 && *len < VI_WIDTH - 1) {
        for (int i = *len; i > vi.col; i--) line[i] = line[i - 1];
        line[vi.col++] = (char)key;
        (*len)++;
    }
    vi.changed = 1;
}

/// Runs an ex command; returns whether the editor ends.
static int viCommand(const char *command) {
    if (same(command, "w")) { viSave(); return 0; }
    if (same(command, "wq") || same(command, "x")) return viSave();
    if (same(command, "q!")) return 1;
    if (same(command, "q")) {
        if (!vi.changed) return 1;
        viSay("No write since last change (add ! to override)", 0);
        return 0;
    }
    viSay("Not an editor command: ", command);
    return 0;
}

static int cmdVi(int argc, char **argv) {
    if (argc != 2) { put(2, "usage: vi FILE\n"); return 1; }
    memset(&vi, 0, sizeof vi);
    vi.path = argv[1];
    viLoad();
    struct termios saved;
    int haveTerm = rawKeys(&saved);
    int rows, cols;
    screenSize(&rows, &cols);
    put(1, "\033[2J");
    char command[64];
    int typing = -1;   // the length of the ex command being typed, or -1
    int pending = 0;   // the first 'd' of "dd"
    for (int done = 0; !done;) {
        command[typing < 0 ? 0 : typing] = 0;
        viDraw(rows, cols, typing < 0 ? 0 : command);
        int key = viKey();
        if (key < 0) break;
        vi.message[0] = 0;
        if (typing >= 0) {
            if (key == '\r' || key == '\n') { done = viCommand(command); typing = -1; }
            else if (key == 27) typing = -1;
            else if (key == 127 || key == 8) typing = typing > 0 ? typing - 1 : -1;
            else if (key >= ' ' && key < 127 && typing < (int)sizeof command - 1) command[typing++] = (char)key;
            continue;
        }
        int move = key & 0xff;
        if (vi.inserting && !(key & 0x100)) {
            if (key == 27) { vi.inserting = 0; if (vi.col > 0) vi.col--; }
            else viInsert(key);
            continue;
        }
        if (pending && key != 'd') pending = 0;
        switch (move) {
        case 'h': if (vi.col > 0) vi.col--; break;
        case 'l': vi.col++; break;
        case 'k': if (vi.row > 0) vi.row--; break;
        case 'j': if (vi.row < vi.count - 1) vi.row++; break;
        case '0': vi.col = 0; break;
        case '$': vi.col = VI_WIDTH; break;
        case 'G': vi.row = vi.count - 1; break;
        case 'i': vi.inserting = 1; break;
        case 'a': vi.inserting = 1; if (viLength[vi.row] > 0) vi.col++; break;
        case 'A': vi.inserting = 1; vi.col = viLength[vi.row]; break;
        case 'o': viOpenLine(vi.row + 1); break;
        case 'O': viOpenLine(vi.row); break;
        case 'x':
            if (viLength[vi.row] > 0) {
                for (int i = vi.col; i < viLength[vi.row] - 1; i++) viText[vi.row][i] = viText[vi.row][i + 1];
                viLength[vi.row]--; vi.changed = 1;
            }
            break;
        case 'd':
            if (!pending) { pending = 1; break; }
            pending = 0; vi.changed = 1;
            if (vi.count == 1) { viLength[0] = 0; break; }
            viRemoveLine(vi.row);
            if (vi.row >= vi.count) vi.row = vi.count - 1;
            break;
        case ':': typing = 0; break;
        default: break;
        }
        // Normal mode rests on a character; insert mode may sit just past the last one.
        int last = viLength[vi.row] - (vi.inserting ? 0 : 1);
        if (vi.col > last) vi.col = last < 0 ? 0 : last;
    }
    put(1, "\033[2J\033[H");
    if (haveTerm) SYS(SYS_ioctl, 0, TCSETS, &saved, 0);
    return 0;
}

static const struct { const char *name; int (*run)(int, char **); } commands[] = {
    {"help", cmdHelp}, {"echo", cmdEcho}, {"cat", cmdCat}, {"ls", cmdLs}, {"mkdir", cmdMkdir},
    {"rm", cmdRm}, {"rmdir", cmdRmdir}, {"cd", cmdCd}, {"pwd", cmdPwd}, {"mount", cmdMount},
    {"umount", cmdUmount}, {"sync", cmdSync}, {"uname", cmdUname}, {"sleep", cmdSleep}, {"top", cmdTop}, {"vi", cmdVi},
    {"reboot", cmdReboot}, {"poweroff", cmdPoweroff},
};

// MARK: the shell

/// Splits `line` in place into words; "double quotes" keep spaces.
static int split(char *line, char **argv, int max) {
    int argc = 0;
    char *p = line;
    while (*p && argc < max - 1) {
        while (*p == ' ' || *p == '\t') p++;
        if (!*p) break;
        char *w = p, *o = p;
        int quoted = 0;
        while (*p && (quoted || (*p != ' ' && *p != '\t'))) {
            if (*p == '"') { quoted = !quoted; p++; continue; }
            *o++ = *p++;
        }
        if (*p) p++;
        *o = 0;
        argv[argc++] = w;
    }
    argv[argc] = 0;
    return argc;
}

static void runLine(char *line) {
    char *argv[32];
    int argc = split(line, argv, 32);
    if (argc == 0) return;
    // A trailing "> FILE" or ">> FILE" sends the command's output to FILE.
    out = 1;
    if (argc >= 3 && (same(argv[argc - 2], ">") || same(argv[argc - 2], ">>"))) {
        long flags = O_WRONLY | O_CREAT | (same(argv[argc - 2], ">") ? O_TRUNC : O_APPEND);
        long fd = SYS(SYS_openat, AT_FDCWD, argv[argc - 1], flags, 0644);
        if (fd < 0) { fail(argv[0], argv[argc - 1], fd); return; }
        out = (int)fd;
        argc -= 2;
        argv[argc] = 0;
    }
    int found = 0;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (same(argv[0], commands[i].name)) { commands[i].run(argc, argv); found = 1; break; }
    }
    if (!found) { put(2, argv[0]); put(2, ": not found (try help)\n"); }
    if (out != 1) SYS(SYS_close, out, 0, 0, 0);
    out = 1;
}

static void mountEarly(const char *dir, const char *type) {
    SYS(SYS_mkdirat, AT_FDCWD, dir, 0755, 0);
    long r = syscall6(SYS_mount, (long)type, (long)dir, (long)type, 0, 0, 0);
    if (r < 0) fail("init", dir, r);
}

int main(void) {
    mountEarly("/proc", "proc");
    mountEarly("/sys", "sysfs");
    mountEarly("/dev", "devtmpfs");
    SYS(SYS_mkdirat, AT_FDCWD, "/mnt", 0755, 0);
    put(1, "\nemupanel Linux guest: a small shell ('help' lists its commands)\n");
    static char line[1024];
    for (;;) {
        put(1, "# ");
        long n = SYS(SYS_read, 0, line, sizeof line - 1, 0);
        if (n <= 0) {
            // No console input (EOF): wait for it rather than spin; PID 1 must not exit.
            long ts[2] = { 1, 0 };
            SYS(SYS_nanosleep, ts, 0, 0, 0);
            continue;
        }
        line[n] = 0;
        if (line[n - 1] == '\n') line[n - 1] = 0;
        runLine(line);
    }
}

// Entry: the kernel starts PID 1 with sp at argc. gp is set for the linker's relaxations.
__asm__(".section .text._start\n"
        ".globl _start\n"
        "_start:\n"
        ".option push\n.option norelax\n"
        "  la gp, __global_pointer$\n"
        ".option pop\n"
        "  call main\n"
        "1: j 1b\n");
