// The reference sketch's real firmware (tests/arduino/avr-build.sh builds
// board/arduino/telepi-motors for an Uno) on an emulated ATmega328P at
// 16 MHz (Debian's simavr), paced to real time so that millis() and the
// sketch's watchdog keep the wall clock's pace. Its UART is this program's
// stdin/stdout (tests/serial.rs puts a pseudo-terminal there); its pins are
// read from the emulated registers every emulated millisecond and each
// change is one line on stderr, in tests/arduino/host.cpp's format:
//   outputs left=F128 right=R64    direction pins (F: IN1 high, R: IN2 high,
//                                  C: both low, !: both high) and PWM 0..255
//   servo 0 2000                   timer 1's pulse on pin 9 (0) or 10 (1), in us
//   said <line>                    a line the firmware sent that is not OK or P
//
//   simavr-uno FIRMWARE.elf

#define _DEFAULT_SOURCE  // usleep, clock_gettime

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <avr_uart.h>
#include <sim_avr.h>
#include <sim_elf.h>

#define F_CPU 16000000u

// ATmega328P data-space addresses (datasheet, "Register Summary").
enum {
  PORTB = 0x25,
  PORTD = 0x2B,
  TCCR0A = 0x44,
  OCR0A = 0x47,
  OCR0B = 0x48,
  TCCR1A = 0x80,
  OCR1AL = 0x88,
  OCR1BL = 0x8A,
};
// TCCR0A/TCCR1A: compare output A / B connected (non-inverting PWM).
#define COMA1 (1 << 7)
#define COMB1 (1 << 5)

static avr_t *avr;
static int xoff;  // the UART's input FIFO is full: hold bytes back
// The firmware has sent its first byte, so Serial.begin() has run: bytes
// sent before that would be lost, as on a real board still booting.
static int listening;
static char line[80];
static size_t line_len;

static void on_xon(struct avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq, (void)value, (void)param;
  xoff = 0;
}

static void on_xoff(struct avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq, (void)value, (void)param;
  xoff = 1;
}

// A byte the firmware sent: to the port, and its lines to stderr.
static void on_output(struct avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq, (void)param;
  char c = (char)value;
  listening = 1;
  if (write(1, &c, 1) < 0) {
    // The port's other end is gone (telepi killed): the firmware runs on.
  }
  if (c == '\n') {
    line[line_len] = '\0';
    if (line_len > 0 && line[line_len - 1] == '\r') line[--line_len] = '\0';
    if (strcmp(line, "OK") != 0 && strcmp(line, "P") != 0) fprintf(stderr, "said %s\n", line);
    line_len = 0;
  } else if (line_len < sizeof line - 1) {
    line[line_len++] = c;
  }
}

static int bit(uint8_t reg, int n) { return (avr->data[reg] >> n) & 1; }

// One motor: its IN1/IN2 levels and its PWM pin's duty (the compare
// register while the pin is in PWM mode, else the pin's level as 0 or 255).
static void describe(char *out, size_t size, const char *side, int in1, int in2, int pwm_on,
                     uint8_t ocr, int level) {
  char direction = in1 && in2 ? '!' : in1 ? 'F' : in2 ? 'R' : 'C';
  unsigned duty = pwm_on ? ocr : level ? 255 : 0;
  snprintf(out, size, "%s=%c%u", side, direction, duty);
}

static unsigned servo_us(uint8_t ocr_low, uint8_t com_bit) {
  if (!(avr->data[TCCR1A] & com_bit)) return 0;
  unsigned ocr = avr->data[ocr_low] | (avr->data[ocr_low + 1] << 8);
  return (ocr + 1) / (F_CPU / 8 / 1000000);
}

// Pins of telepi-motors.ino on an Uno: left PWM 5 (PD5, OC0B), IN1 7 (PD7),
// IN2 8 (PB0); right PWM 6 (PD6, OC0A), IN1 4 (PD4), IN2 2 (PD2); servos
// 9 (OC1A) and 10 (OC1B).
static void sample(void) {
  static char last[64];
  static unsigned servos[2];
  char left[24], right[24], now[64];
  uint8_t tccr0a = avr->data[TCCR0A];
  describe(left, sizeof left, "left", bit(PORTD, 7), bit(PORTB, 0), tccr0a & COMB1,
           avr->data[OCR0B], bit(PORTD, 5));
  describe(right, sizeof right, "right", bit(PORTD, 4), bit(PORTD, 2), tccr0a & COMA1,
           avr->data[OCR0A], bit(PORTD, 6));
  snprintf(now, sizeof now, "outputs %s %s", left, right);
  if (strcmp(now, last) != 0) {
    fprintf(stderr, "%s\n", now);
    strcpy(last, now);
  }
  unsigned pulses[2] = {servo_us(OCR1AL, COMA1), servo_us(OCR1BL, COMB1)};
  for (int i = 0; i < 2; ++i) {
    if (pulses[i] != servos[i]) {
      servos[i] = pulses[i];
      fprintf(stderr, "servo %d %u\n", i, pulses[i]);
    }
  }
}

static double seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: simavr-uno FIRMWARE.elf\n");
    return 2;
  }
  setvbuf(stderr, NULL, _IOLBF, 0);
  elf_firmware_t firmware;
  memset(&firmware, 0, sizeof firmware);
  if (elf_read_firmware(argv[1], &firmware) != 0) {
    fprintf(stderr, "simavr-uno: cannot read %s\n", argv[1]);
    return 1;
  }
  avr = avr_make_mcu_by_name("atmega328p");
  if (!avr) return 1;
  avr_init(avr);
  firmware.frequency = F_CPU;
  avr_load_firmware(avr, &firmware);
  avr->log = LOG_ERROR;

  // The UART to our stdin/stdout, without simavr's own console echo or its
  // sleeping while the firmware polls an empty receiver.
  uint32_t flags = 0;
  avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0'), &flags);
  flags &= ~(AVR_UART_FLAG_STDIO | AVR_UART_FLAG_POLL_SLEEP);
  avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
  avr_irq_t *input = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT),
                          on_output, NULL);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON),
                          on_xon, NULL);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF),
                          on_xoff, NULL);
  fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);

  const double started = seconds();
  avr_cycle_count_t next_ms = 0;
  uint8_t pending[256];
  size_t pending_len = 0, pending_at = 0;
  for (;;) {
    int state = avr_run(avr);
    if (state == cpu_Done || state == cpu_Crashed) {
      fprintf(stderr, "simavr-uno: the firmware stopped (state %d)\n", state);
      return 1;
    }
    if (avr->cycle < next_ms) continue;
    next_ms = avr->cycle + F_CPU / 1000;
    sample();
    // Bytes from the port, fed as the UART's FIFO takes them.
    if (listening && pending_at == pending_len) {
      ssize_t n = read(0, pending, sizeof pending);
      pending_len = n > 0 ? (size_t)n : 0;
      pending_at = 0;
    }
    while (pending_at < pending_len && !xoff) avr_raise_irq(input, pending[pending_at++]);
    // Real time: never ahead of the wall clock.
    double ahead = (double)avr->cycle / F_CPU - (seconds() - started);
    if (ahead > 0.002) usleep((useconds_t)(ahead * 1e6));
  }
}
