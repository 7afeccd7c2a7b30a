// The reference sketch's protocol code (board/arduino/telepi-motors/
// protocol.h) on a PC: what telepi-motors.ino does in loop(), with the
// serial port on stdin/stdout (tests/serial.rs puts a pseudo-terminal
// there) and the pin writes replaced by one line on stderr per change:
//   outputs left=F128 right=R64    F forward (IN1 high), R reverse (IN2 high),
//                                  C coast (both low), then the PWM duty 0..255
//   servo 0 2000
//   said <line>      a line sent to telepi that is not OK or P (ERR ..., watchdog)
// as tests/arduino/simavr-uno.c reports the real firmware.
// Built and run by tests/serial.rs; not part of the sketch.

#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../board/arduino/telepi-motors/protocol.h"

static const uint8_t SERVOS = 2;  // pan and tilt, as the sketch wires them

static uint32_t millis() {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return uint32_t(t.tv_sec * 1000 + t.tv_nsec / 1000000);
}

static void describe(char *out, size_t size, const char *side, int16_t speed) {
  telepi::Bridge b = telepi::bridge(speed);
  char direction = b.in1 && b.in2 ? '!' : b.in1 ? 'F' : b.in2 ? 'R' : 'C';
  snprintf(out, size, "%s=%c%u", side, direction, unsigned(b.pwm));
}

// Prints the outputs and servos that changed since the last call.
static void apply(const telepi::Controller &c) {
  static char last[64] = "";
  static uint16_t servos[SERVOS] = {0};
  char left[24], right[24], now[64];
  describe(left, sizeof left, "left", c.left());
  describe(right, sizeof right, "right", c.right());
  snprintf(now, sizeof now, "outputs %s %s", left, right);
  if (strcmp(now, last) != 0) {
    fprintf(stderr, "%s\n", now);
    strcpy(last, now);
  }
  for (uint8_t i = 0; i < SERVOS; ++i) {
    if (c.servo(i) != servos[i]) {
      servos[i] = c.servo(i);
      fprintf(stderr, "servo %u %u\n", unsigned(i), unsigned(servos[i]));
    }
  }
}

// One line to the port, CR LF-ended as Serial.println ends them.
static void send(const char *line) {
  if (strcmp(line, "OK") != 0 && strcmp(line, "P") != 0) fprintf(stderr, "said %s\n", line);
  if (write(1, line, strlen(line)) < 0 || write(1, "\r\n", 2) < 0) {
    // The port's other end is gone (telepi killed): the controller runs on.
  }
}

int main() {
  setvbuf(stderr, nullptr, _IOLBF, 0);
  telepi::LineReader reader;
  telepi::Controller controller(SERVOS);
  send("telepi-motors 1");
  apply(controller);
  for (;;) {
    struct pollfd in = {0, POLLIN, 0};
    int ready = poll(&in, 1, 5);
    if (ready > 0 && (in.revents & POLLIN)) {
      char buf[64];
      ssize_t n = read(0, buf, sizeof buf);
      for (ssize_t i = 0; i < n; ++i) {
        const char *line = reader.feed(buf[i]);
        if (line == nullptr) continue;
        send(controller.handle(line, millis()));
        apply(controller);
      }
    } else if (ready > 0) {
      // The other end hung up (telepi killed): the watchdog must still run.
      usleep(5000);
    }
    if (controller.watchdog(millis())) {
      apply(controller);
      send("watchdog");
    }
  }
}
