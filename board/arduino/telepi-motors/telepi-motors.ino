// telepi-motors: an Arduino (Uno, Nano, Leonardo...) as telepi's motor
// controller (`[drive] backend = "serial"`, `telepi --board arduino-serial`).
// Two DC motors on an L298N or TB6612FNG, each with a PWM (speed) pin and
// two direction pins, two hobby servos, over USB serial at 115200 baud.
// Builds with the Arduino IDE or arduino-cli as it is (no libraries needed
// on AVR boards); tests/arduino/avr-build.sh builds it for an Uno with
// Debian's avr-gcc and arduino-core-avr.
// The protocol, parsing and watchdog are in protocol.h (shared with
// telepi's tests); this file only moves pins.
//
// Wiring (Arduino pin -> driver input):
//   left motor:  5 -> ENA (L298N) / PWMA (TB6612), 7 -> IN1 / AIN1, 8 -> IN2 / AIN2
//   right motor: 6 -> ENB / PWMB,                  4 -> IN3 / BIN1, 2 -> IN4 / BIN2
//   TB6612 only: A0 -> STBY (held high here; leave it unconnected on an L298N)
//   servos:      9 -> pan signal, 10 -> tilt signal on an Uno, Nano or
//                Leonardo (11 and 12 on a Mega): timer 1's two outputs; 5 V
//                and GND from a separate supply for anything bigger than a micro servo
//   GND of the Arduino, the driver and the motor battery joined.
// L298N: remove the ENA/ENB jumpers, or the motors only run full speed.
// Pins 5 and 6 give ~980 Hz PWM (timer 0); timer 1 makes the servo pulses.
//
// A motor turning the wrong way: swap its two wires, or set invert_left /
// invert_right in telepi's [drive].

#include "protocol.h"

const uint8_t LEFT_PWM = 5, LEFT_IN1 = 7, LEFT_IN2 = 8;
const uint8_t RIGHT_PWM = 6, RIGHT_IN1 = 4, RIGHT_IN2 = 2;
const uint8_t STANDBY = A0;
const uint8_t SERVOS = 2;

#if defined(__AVR__)
// Servo pulses in hardware, no library: timer 1 in fast PWM mode 14 (TOP =
// ICR1) at F_CPU/8, one period of 20 ms, OC1A and OC1B high for the pulse.
// A servo's output is switched on with its first S, so it does not twitch at
// power-up.
#if defined(__AVR_ATmega1280__) || defined(__AVR_ATmega2560__)
const uint8_t SERVO_PINS[SERVOS] = {11, 12};
#else
const uint8_t SERVO_PINS[SERVOS] = {9, 10};
#endif
const uint32_t TICKS_PER_MS = F_CPU / 8 / 1000;

void startServoTimer() {
  TCCR1A = _BV(WGM11);
  TCCR1B = _BV(WGM13) | _BV(WGM12) | _BV(CS11);
  ICR1 = uint16_t(20 * TICKS_PER_MS - 1);
}

void writeServo(uint8_t index, uint16_t pulseUs) {
  uint16_t ticks = uint16_t(uint32_t(pulseUs) * TICKS_PER_MS / 1000);
  if (index == 0) {
    OCR1A = ticks - 1;
    TCCR1A |= _BV(COM1A1);
  } else {
    OCR1B = ticks - 1;
    TCCR1A |= _BV(COM1B1);
  }
  pinMode(SERVO_PINS[index], OUTPUT);
}
#else
// Other boards: the Servo library.
#include <Servo.h>
const uint8_t SERVO_PINS[SERVOS] = {9, 10};
Servo servos[SERVOS];

void startServoTimer() {}

void writeServo(uint8_t index, uint16_t pulseUs) {
  if (!servos[index].attached()) servos[index].attach(SERVO_PINS[index]);
  servos[index].writeMicroseconds(pulseUs);
}
#endif

telepi::LineReader reader;
telepi::Controller controller(SERVOS);
uint16_t servoPulses[SERVOS];

void setBridge(uint8_t pwm, uint8_t in1, uint8_t in2, int16_t speed) {
  telepi::Bridge b = telepi::bridge(speed);
  // The input going low first, so a reversal passes through coast, not brake.
  if (!b.in1) digitalWrite(in1, LOW);
  if (!b.in2) digitalWrite(in2, LOW);
  digitalWrite(in1, b.in1 ? HIGH : LOW);
  digitalWrite(in2, b.in2 ? HIGH : LOW);
  analogWrite(pwm, b.pwm);
}

void applyOutputs() {
  setBridge(LEFT_PWM, LEFT_IN1, LEFT_IN2, controller.left());
  setBridge(RIGHT_PWM, RIGHT_IN1, RIGHT_IN2, controller.right());
  for (uint8_t i = 0; i < SERVOS; ++i) {
    uint16_t pulse = controller.servo(i);
    if (pulse == 0 || pulse == servoPulses[i]) continue;
    writeServo(i, pulse);
    servoPulses[i] = pulse;
  }
}

void setup() {
  const uint8_t outputs[] = {LEFT_PWM, LEFT_IN1, LEFT_IN2, RIGHT_PWM, RIGHT_IN1, RIGHT_IN2, STANDBY};
  for (uint8_t pin : outputs) {
    digitalWrite(pin, LOW);
    pinMode(pin, OUTPUT);
  }
  digitalWrite(STANDBY, HIGH);
  startServoTimer();
  Serial.begin(115200);
  // Any line proves the link to telepi; this one also says what is running.
  Serial.println("telepi-motors 1");
}

void loop() {
  while (Serial.available() > 0) {
    const char *line = reader.feed(char(Serial.read()));
    if (line != nullptr) {
      Serial.println(controller.handle(line, millis()));
      applyOutputs();
    }
  }
  if (controller.watchdog(millis())) {
    applyOutputs();
    // Not an answer to anything: telepi logs it (and takes it as a sign of life).
    Serial.println("watchdog");
  }
}
