#!/usr/bin/env bash
# Builds the reference sketch (board/arduino/telepi-motors) for an Arduino
# Uno (ATmega328P, 16 MHz) the way the Arduino IDE does, with Debian's
# avr-gcc and its packaged Arduino AVR core (installed if missing), and
# checks it fits the Uno's flash and RAM. Prints the .elf's path.
#
#   tests/arduino/avr-build.sh [OUT-DIR]      (default target/arduino)
set -euo pipefail
cd "$(dirname "$0")/../.."

need=()
command -v avr-g++ >/dev/null || need+=(gcc-avr binutils-avr)
[ -f /usr/include/avr/io.h ] || [ -f /usr/lib/avr/include/avr/io.h ] || need+=(avr-libc)
core=/usr/share/arduino/hardware/arduino/avr
[ -d "$core/cores/arduino" ] || need+=(arduino-core-avr)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "avr-build: installing ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

sketch=board/arduino/telepi-motors
out=${1:-target/arduino}
rm -rf "$out" && mkdir -p "$out/core"
# The Uno's entries in the core's boards.txt and platform.txt.
flags=(-mmcu=atmega328p -DF_CPU=16000000L -DARDUINO=10819 -DARDUINO_AVR_UNO -DARDUINO_ARCH_AVR
  -Os -g -ffunction-sections -fdata-sections -flto -Wall -Wextra
  "-I$core/cores/arduino" "-I$core/variants/standard")
cxxflags=(-std=gnu++11 -fno-exceptions -fno-threadsafe-statics -fpermissive)

for f in "$core"/cores/arduino/*.c "$core"/cores/arduino/*.cpp "$core"/cores/arduino/*.S; do
  obj="$out/core/$(basename "$f").o"
  case "$f" in
    *.c) avr-gcc -c "${flags[@]}" -std=gnu11 -w "$f" -o "$obj" ;;
    # Debian's avr-gcc 5.4 defines DECIMAL_DIG for C99 only, its packaged
    # core's WString.cpp wants it in C++ too (the IDE's gcc 7 has it): the value float.h gives C.
    *.cpp) avr-g++ -c "${flags[@]}" "${cxxflags[@]}" -DDECIMAL_DIG=__DECIMAL_DIG__ -w "$f" -o "$obj" ;;
    *.S) avr-gcc -c "${flags[@]}" -x assembler-with-cpp "$f" -o "$obj" ;;
  esac
done
avr-gcc-ar rcs "$out/core.a" "$out"/core/*.o

# As the IDE does with a sketch: Arduino.h first, the .ino as C++. Our own
# warnings are errors; the sketch defines functions before using them, so
# it needs none of the IDE's generated prototypes.
{
  echo '#include <Arduino.h>'
  echo "#line 1 \"$sketch/telepi-motors.ino\""
  cat "$sketch/telepi-motors.ino"
} >"$out/telepi-motors.cpp"
avr-g++ -c "${flags[@]}" "${cxxflags[@]}" -Werror "-I$sketch" "$out/telepi-motors.cpp" -o "$out/telepi-motors.o"
avr-gcc -mmcu=atmega328p -Os -g -flto -fuse-linker-plugin -Wl,--gc-sections \
  -o "$out/telepi-motors.elf" "$out/telepi-motors.o" "$out/core.a" -lm

# Flash = .text + .data, RAM = .data + .bss (the Uno: 32256 bytes after the
# bootloader, 2048 of RAM).
read -r text data bss _ < <(avr-size "$out/telepi-motors.elf" | tail -1)
flash=$((text + data)) ram=$((data + bss))
echo "avr-build: telepi-motors for an Uno: flash $flash of 32256 bytes, RAM $ram of 2048 (static)" >&2
[ "$flash" -le 32256 ] || { echo "avr-build: FAIL: too big for the Uno's flash" >&2; exit 1; }
[ "$ram" -le 1536 ] || { echo "avr-build: FAIL: leaves under 512 bytes of RAM for the stack" >&2; exit 1; }
echo "$out/telepi-motors.elf"
