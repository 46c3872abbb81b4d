/*
 * vt-udp: the guest's UDP load generator for the guest benchmarks (bench/guest-net.bench.ts); busybox's
 * nc has no UDP. Freestanding: raw i386 Linux system calls and no libc, so that the host's gcc builds
 * it with -m32 and no 32-bit libraries installed (scripts/guest/build-assets.sh).
 *
 *   vt-udp send ADDR PORT SIZE MS   send SIZE-byte datagrams to ADDR:PORT for MS milliseconds
 *   vt-udp recv PORT IDLE_MS        print "udpready", then receive until IDLE_MS pass without one
 *
 * Datagram n carries n as a 32-bit little-endian number, then byte i = (n + i) & 0xff; the receiver
 * checks the number (losses, reordering) and three pattern bytes of every datagram (the guest kernel
 * verifies the whole payload against the UDP checksum the host computed). Each prints one line:
 *   VT-RESULT udpsend datagrams=N bytes=B us=T errors=E
 *   VT-RESULT udprecv datagrams=N bytes=B us=T lost=L bad=K   (us: first datagram to last)
 */

#define SYS_exit_group 252
#define SYS_read 3
#define SYS_write 4
#define SYS_writev 146
#define SYS_clock_gettime 265
#define SYS_socket 359
#define SYS_bind 361
#define SYS_connect 362
#define SYS_setsockopt 366
#define AF_INET 2
#define SOCK_DGRAM 2
#define SOL_SOCKET 1
#define SO_RCVBUF 8
#define SO_RCVTIMEO 20
#define CLOCK_MONOTONIC 1
#define EAGAIN 11
#define MAX_SIZE 65507
/* Consecutive failed sends after which the sender gives up (e.g. no route). */
#define MAX_ERRORS 100000

struct sockaddr_in {
  unsigned short family;
  unsigned short port; /* network order */
  unsigned int addr;   /* network order */
  unsigned char zero[8];
};
struct iovec32 {
  void *base;
  unsigned long len;
};
struct timespec32 {
  long sec;
  long nsec;
};
struct timeval32 {
  long sec;
  long usec;
};

static unsigned char buf[MAX_SIZE + 1];
/* pattern[k] = k & 0xff: datagram n's bytes from 4 on are pattern[(n & 0xff) + 4 ...], so a sender
   builds none of them (every instruction is emulated in the guest). */
static unsigned char pattern[MAX_SIZE + 256];

static long sys3(long n, long a, long b, long c) {
  long r;
  __asm__ volatile("int $0x80" : "=a"(r) : "a"(n), "b"(a), "c"(b), "d"(c) : "memory");
  return r;
}
static long sys5(long n, long a, long b, long c, long d, long e) {
  long r;
  __asm__ volatile("int $0x80" : "=a"(r) : "a"(n), "b"(a), "c"(b), "d"(c), "S"(d), "D"(e) : "memory");
  return r;
}

/* The compiler may emit calls to these even in a freestanding build. */
void *memset(void *d, int c, unsigned long n) {
  unsigned char *p = d;
  while (n--) *p++ = (unsigned char)c;
  return d;
}
void *memcpy(void *d, const void *s, unsigned long n) {
  unsigned char *p = d;
  const unsigned char *q = s;
  while (n--) *p++ = *q++;
  return d;
}

static unsigned long slen(const char *s) {
  unsigned long n = 0;
  while (s[n]) n++;
  return n;
}
static void out(const char *s) { sys3(SYS_write, 1, (long)s, (long)slen(s)); }
static void outnum(unsigned int v) {
  char t[11];
  int i = 10;
  t[i] = 0;
  do t[--i] = (char)('0' + v % 10);
  while ((v /= 10) != 0);
  out(t + i);
}
static void field(const char *key, unsigned int v) {
  out(" ");
  out(key);
  out("=");
  outnum(v);
}
static __attribute__((noreturn)) void quit(int code) {
  for (;;) sys3(SYS_exit_group, code, 0, 0);
}
static __attribute__((noreturn)) void fail(const char *what) {
  out("vt-udp: ");
  out(what);
  out("\n");
  quit(1);
}

/* A decimal number, or fail. */
static unsigned int num(const char *s) {
  unsigned int v = 0;
  if (!*s) fail("bad number");
  for (; *s; s++) {
    if (*s < '0' || *s > '9' || v > 400000000u) fail("bad number");
    v = v * 10 + (unsigned int)(*s - '0');
  }
  return v;
}
/* A dotted IPv4 address in network order, or fail. */
static unsigned int ipv4(const char *s) {
  unsigned int parts[4] = {0, 0, 0, 0};
  int n = 0;
  for (; *s; s++) {
    if (*s == '.') {
      if (++n > 3) fail("bad address");
    } else if (*s >= '0' && *s <= '9' && parts[n] < 256) {
      parts[n] = parts[n] * 10 + (unsigned int)(*s - '0');
    } else {
      fail("bad address");
    }
  }
  if (n != 3 || parts[0] > 255 || parts[1] > 255 || parts[2] > 255 || parts[3] > 255) fail("bad address");
  return parts[0] | parts[1] << 8 | parts[2] << 16 | parts[3] << 24;
}

/* Microseconds on the monotonic clock, modulo 2^32 (differences stay right for 71 minutes). */
static unsigned int now_us(void) {
  struct timespec32 ts;
  sys3(SYS_clock_gettime, CLOCK_MONOTONIC, (long)&ts, 0);
  return (unsigned int)ts.sec * 1000000u + (unsigned int)ts.nsec / 1000u;
}

static int udp_socket(void) {
  long fd = sys3(SYS_socket, AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) fail("socket");
  return (int)fd;
}

static void send_mode(char **argv) {
  unsigned int size = num(argv[3]), ms = num(argv[4]), sent = 0, errors = 0, failed = 0, t0, t, i;
  unsigned char head[4];
  struct iovec32 iov[2];
  struct sockaddr_in to;
  int fd = udp_socket();
  if (size < 4 || size > MAX_SIZE) fail("SIZE must be 4..65507");
  memset(&to, 0, sizeof to);
  to.family = AF_INET;
  to.addr = ipv4(argv[1]);
  to.port = (unsigned short)(num(argv[2]) >> 8 | (num(argv[2]) & 0xff) << 8);
  if (sys3(SYS_connect, fd, (long)&to, sizeof to) < 0) fail("connect");
  for (i = 0; i < sizeof pattern; i++) pattern[i] = (unsigned char)i;
  iov[0].base = head;
  iov[0].len = 4;
  iov[1].len = size - 4;
  t0 = t = now_us();
  while (t - t0 < ms * 1000u) {
    head[0] = (unsigned char)sent;
    head[1] = (unsigned char)(sent >> 8);
    head[2] = (unsigned char)(sent >> 16);
    head[3] = (unsigned char)(sent >> 24);
    iov[1].base = pattern + (sent & 0xff) + 4;
    if (sys3(SYS_writev, fd, (long)iov, 2) == (long)size) {
      sent++;
      failed = 0;
    } else if (++errors, ++failed > MAX_ERRORS) {
      break;
    }
    if ((sent & 15) == 0) t = now_us();
  }
  t = now_us();
  out("VT-RESULT udpsend");
  field("datagrams", sent);
  field("bytes", sent * size);
  field("us", t - t0);
  field("errors", errors);
  out("\n");
}

static void recv_mode(char **argv) {
  unsigned int port = num(argv[1]), idle = num(argv[2]);
  unsigned int got = 0, bytes = 0, lost = 0, bad = 0, next = 0, first = 0, last = 0, waited = 0;
  int rcvbuf = 1 << 20;
  struct sockaddr_in at;
  struct timeval32 tv;
  int fd = udp_socket();
  memset(&at, 0, sizeof at);
  at.family = AF_INET;
  at.port = (unsigned short)(port >> 8 | (port & 0xff) << 8);
  if (sys3(SYS_bind, fd, (long)&at, sizeof at) < 0) fail("bind");
  tv.sec = (long)(idle / 1000);
  tv.usec = (long)(idle % 1000 * 1000);
  sys5(SYS_setsockopt, fd, SOL_SOCKET, SO_RCVTIMEO, (long)&tv, sizeof tv);
  sys5(SYS_setsockopt, fd, SOL_SOCKET, SO_RCVBUF, (long)&rcvbuf, sizeof rcvbuf);
  out("VT-RESULT udpready");
  field("port", port);
  out("\n");
  for (;;) {
    long n = sys3(SYS_read, fd, (long)buf, sizeof buf);
    if (n == -EAGAIN) {
      /* Before the first datagram, wait up to a minute for the host to start. */
      if (got > 0 || (waited += idle) >= 60000u) break;
      continue;
    }
    if (n < 0) fail("read");
    last = now_us();
    if (got++ == 0) first = last;
    bytes += (unsigned int)n;
    if (n < 4) {
      bad++;
      continue;
    }
    {
      unsigned int seq = buf[0] | buf[1] << 8 | (unsigned int)buf[2] << 16 | (unsigned int)buf[3] << 24;
      unsigned int mid = (unsigned int)n / 2, end = (unsigned int)n - 1;
      if (n > 4 && (buf[4] != (unsigned char)(seq + 4) || buf[mid] != (unsigned char)(seq + mid) || buf[end] != (unsigned char)(seq + end)))
        bad++;
      if (seq >= next) {
        lost += seq - next;
        next = seq + 1;
      } else {
        bad++; /* reordered or repeated */
      }
    }
  }
  out("VT-RESULT udprecv");
  field("datagrams", got);
  field("bytes", bytes);
  field("us", last - first);
  field("lost", lost);
  field("bad", bad);
  out("\n");
}

__attribute__((used, noreturn)) void vt_main(unsigned int *sp) {
  int argc = (int)sp[0];
  char **argv = (char **)(sp + 1);
  if (argc == 6 && argv[1][0] == 's') send_mode(argv + 1);
  else if (argc == 4 && argv[1][0] == 'r') recv_mode(argv + 1);
  else fail("usage: vt-udp send ADDR PORT SIZE MS | vt-udp recv PORT IDLE_MS");
  quit(0);
}

/* The entry point: the stack holds argc, then argv. */
__asm__(".globl _start\n"
        "_start:\n"
        "  xorl %ebp, %ebp\n"
        "  movl %esp, %eax\n"
        "  andl $-16, %esp\n"
        "  subl $12, %esp\n"
        "  pushl %eax\n"
        "  call vt_main\n");
