// telepi's serial motor protocol, the controller's side: line assembly,
// parsing, the motor watchdog and the H-bridge outputs. Plain C++11 with no
// Arduino headers, so the same code runs in the sketch (telepi-motors.ino)
// and in telepi's tests on a PC (tests/serial.rs compiles host.cpp with g++
// and connects it to telepi through a pseudo-terminal).
//
// telepi sends one ASCII line per command, '\n'-ended (src/drive/serial.rs):
//   M <left> <right>     motor speeds, integers -1000..=1000, sign = direction   -> OK
//   S <index> <pulse_us> servo `index` to a pulse of 500..=2500 us                -> OK
//   X                    stop both motors now                                     -> OK
//   P                    ping (every 200 ms)                                      -> P
// Anything else is answered "ERR <why>". No M for WATCHDOG_MS stops the
// motors here, whatever telepi does: a dead Pi or a pulled cable stops the robot.

#ifndef TELEPI_PROTOCOL_H
#define TELEPI_PROTOCOL_H

#include <stdint.h>

namespace telepi {

const uint16_t WATCHDOG_MS = 500;
const uint8_t MAX_SERVOS = 8;
// Longest line accepted ("S 7 2500" is 8); longer ones are refused whole.
const uint8_t MAX_LINE = 32;

// Collects bytes into lines. A '\r' is ignored, so "\r\n" works too.
class LineReader {
 public:
  LineReader() : len_(0), overflow_(false) { buf_[0] = '\0'; }

  // Takes one byte; returns the finished line (without its end) when `c`
  // ends one, else nullptr. An over-long line comes back as "" (refused).
  const char *feed(char c) {
    if (c == '\r') return nullptr;
    if (c != '\n') {
      if (len_ < MAX_LINE) {
        buf_[len_++] = c;
      } else {
        overflow_ = true;
      }
      return nullptr;
    }
    buf_[overflow_ ? 0 : len_] = '\0';
    len_ = 0;
    overflow_ = false;
    return buf_;
  }

 private:
  char buf_[MAX_LINE + 1];
  uint8_t len_;
  bool overflow_;
};

// One motor's H-bridge inputs: IN1/IN2 (L298N IN1-IN4, TB6612 AIN/BIN) and
// the enable/PWM duty 0..255 for analogWrite.
struct Bridge {
  bool in1;
  bool in2;
  uint8_t pwm;
};

// Forward: IN1 high; reverse: IN2 high; stopped: both low (coast).
inline Bridge bridge(int16_t speed) {
  Bridge b;
  b.in1 = speed > 0;
  b.in2 = speed < 0;
  int32_t size = speed < 0 ? -int32_t(speed) : speed;
  b.pwm = uint8_t((size * 255 + 500) / 1000);
  return b;
}

// Parses a decimal integer that is the whole of [s, end) into `out`.
inline bool parseInt(const char *s, const char *end, int32_t &out) {
  bool negative = false;
  if (s < end && *s == '-') {
    negative = true;
    ++s;
  }
  if (s == end || end - s > 6) return false;
  int32_t value = 0;
  for (; s < end; ++s) {
    if (*s < '0' || *s > '9') return false;
    value = value * 10 + (*s - '0');
  }
  out = negative ? -value : value;
  return true;
}

// The controller's state: what the motors and servos should be doing.
class Controller {
 public:
  // `servos`: how many servos are wired (at most MAX_SERVOS); S for any
  // other index is refused.
  explicit Controller(uint8_t servos)
      : left_(0), right_(0), lastMotorsMs_(0), servoCount_(servos < MAX_SERVOS ? servos : MAX_SERVOS) {
    for (uint8_t i = 0; i < MAX_SERVOS; ++i) servos_[i] = 0;
  }

  // Handles one line (from LineReader) at `nowMs` (millis()); returns the
  // reply to send back, without its line end.
  const char *handle(const char *line, uint32_t nowMs) {
    // Split into at most three words at single spaces.
    const char *word[3];
    const char *wordEnd[3];
    uint8_t words = 0;
    const char *p = line;
    while (*p) {
      if (words == 3) return "ERR too many words";
      word[words] = p;
      while (*p && *p != ' ') ++p;
      wordEnd[words++] = p;
      if (*p == ' ') ++p;
    }
    if (words == 0) return "ERR empty or too long line";
    if (wordEnd[0] - word[0] != 1) return "ERR unknown command";
    int32_t a = 0;
    int32_t b = 0;
    switch (word[0][0]) {
      case 'P':
        return words == 1 ? "P" : "ERR P takes nothing";
      case 'X':
        if (words != 1) return "ERR X takes nothing";
        left_ = right_ = 0;
        return "OK";
      case 'M':
        if (words != 3 || !parseInt(word[1], wordEnd[1], a) || !parseInt(word[2], wordEnd[2], b))
          return "ERR M needs two integers";
        if (a < -1000 || a > 1000 || b < -1000 || b > 1000) return "ERR speed not in -1000..1000";
        left_ = int16_t(a);
        right_ = int16_t(b);
        lastMotorsMs_ = nowMs;
        return "OK";
      case 'S':
        if (words != 3 || !parseInt(word[1], wordEnd[1], a) || !parseInt(word[2], wordEnd[2], b))
          return "ERR S needs two integers";
        if (a < 0 || a >= servoCount_) return "ERR no such servo";
        if (b < 500 || b > 2500) return "ERR pulse not in 500..2500";
        servos_[a] = uint16_t(b);
        return "OK";
      default:
        return "ERR unknown command";
    }
  }

  // Call on every pass of loop(): stops moving motors when no M came for
  // WATCHDOG_MS. Returns true when it has just stopped them.
  bool watchdog(uint32_t nowMs) {
    // Unsigned subtraction: right across millis()' wrap after 49 days.
    if ((left_ != 0 || right_ != 0) && uint32_t(nowMs - lastMotorsMs_) >= WATCHDOG_MS) {
      left_ = right_ = 0;
      return true;
    }
    return false;
  }

  int16_t left() const { return left_; }
  int16_t right() const { return right_; }
  // The pulse servo `index` was last sent, 0 while it has had none.
  uint16_t servo(uint8_t index) const { return index < MAX_SERVOS ? servos_[index] : 0; }

 private:
  int16_t left_;
  int16_t right_;
  uint32_t lastMotorsMs_;
  uint8_t servoCount_;
  uint16_t servos_[MAX_SERVOS];
};

}  // namespace telepi

#endif
