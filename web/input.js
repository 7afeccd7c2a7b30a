// telepi page: what the user holds, for app.js: keys (WASD, arrows), a
// gamepad, the on-screen joystick and the servo sliders, read into one
// drive command. What to do with it (claim, drive, stop) is app.js's. Plain
// script, no build step.
'use strict';

window.telepiInput = ({ $, onCustomKey, onChange, onStop }) => {
  const KEY_TURN = 0.6;
  const JOY_DEADZONE = 0.08;
  const PAD_DEADZONE = 0.15;
  const clamp = (v) => Math.max(-1, Math.min(1, v));

  const KEY_AXES = {
    KeyW: [1, 0], ArrowUp: [1, 0],
    KeyS: [-1, 0], ArrowDown: [-1, 0],
    KeyA: [0, KEY_TURN], ArrowLeft: [0, KEY_TURN],
    KeyD: [0, -KEY_TURN], ArrowRight: [0, -KEY_TURN],
  };

  const input = {
    keys: new Set(),
    joystick: null, // {linear, angular} while the knob is held
    joystickPointer: null,
    padStopHeld: false,
    padLatched: false, // after a stop the stick must return to centre before it drives again
    servoPending: new Map(), // name -> value not yet sent
    servoTouchedAt: new Map(), // name -> time the user last moved the slider
  };

  const joystick = $('joystick');
  const knob = $('knob');

  function keyboardCommand() {
    if (input.keys.size === 0) return null;
    let linear = 0;
    let angular = 0;
    for (const code of input.keys) {
      linear += KEY_AXES[code][0];
      angular += KEY_AXES[code][1];
    }
    return { linear: clamp(linear), angular: clamp(angular) };
  }

  function gamepadCommand() {
    const pad = [...(navigator.getGamepads ? navigator.getGamepads() : [])].find((p) => p && p.connected);
    if (!pad) return null;
    const stopPressed = Boolean(pad.buttons[0] && pad.buttons[0].pressed);
    if (stopPressed && !input.padStopHeld) onStop();
    input.padStopHeld = stopPressed;
    if (stopPressed) return null;
    const [x = 0, y = 0] = pad.axes;
    if (Math.hypot(x, y) < PAD_DEADZONE) {
      input.padLatched = false;
      return null;
    }
    if (input.padLatched) return null;
    return { linear: clamp(-y), angular: clamp(-x) };
  }

  // The joystick wins over the gamepad, which wins over the keyboard.
  function currentCommand() {
    return input.joystick || gamepadCommand() || keyboardCommand();
  }

  // Everything held is let go; each control must be pressed again to drive.
  function clearInputs() {
    input.keys.clear();
    input.padLatched = true;
    if (input.joystickPointer !== null && joystick.hasPointerCapture(input.joystickPointer)) {
      joystick.releasePointerCapture(input.joystickPointer);
    }
    input.joystickPointer = null;
    setJoystick(null);
  }

  function isTyping(target) {
    return target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement;
  }

  function onKeyDown(e) {
    if (e.code === 'Space' && !isTyping(e.target)) {
      e.preventDefault();
      onStop();
      return;
    }
    if (onCustomKey(e, true)) return;
    if (!(e.code in KEY_AXES) || isTyping(e.target) || e.ctrlKey || e.metaKey || e.altKey) return;
    e.preventDefault();
    if (e.repeat || input.keys.has(e.code)) return;
    input.keys.add(e.code);
    onChange();
  }

  function onKeyUp(e) {
    if (onCustomKey(e, false)) return;
    if (!input.keys.delete(e.code)) return;
    onChange();
  }

  // ---- on-screen joystick -------------------------------------------------

  function setJoystick(cmd, dx = 0, dy = 0) {
    input.joystick = cmd;
    knob.style.transform = `translate(${dx}px, ${dy}px)`;
    joystick.classList.toggle('active', cmd !== null);
  }

  function joystickMove(e) {
    if (e.pointerId !== input.joystickPointer) return;
    const rect = joystick.getBoundingClientRect();
    const radius = rect.width / 2;
    let x = (e.clientX - rect.left - radius) / radius;
    let y = (e.clientY - rect.top - radius) / radius;
    const len = Math.hypot(x, y);
    if (len > 1) {
      x /= len;
      y /= len;
    }
    const cmd = Math.hypot(x, y) < JOY_DEADZONE ? { linear: 0, angular: 0 } : { linear: -y, angular: -x };
    setJoystick(cmd, x * radius, y * radius);
  }

  function joystickDown(e) {
    if (input.joystickPointer !== null) return;
    e.preventDefault();
    input.joystickPointer = e.pointerId;
    joystick.setPointerCapture(e.pointerId);
    joystickMove(e);
    onChange();
  }

  function joystickUp(e) {
    if (e.pointerId !== input.joystickPointer) return;
    input.joystickPointer = null;
    setJoystick(null);
    onChange();
  }

  // ---- servos -------------------------------------------------------------

  function onServoInput(e) {
    const name = e.target.dataset.servo;
    const value = Number(e.target.value);
    input.servoPending.set(name, value);
    input.servoTouchedAt.set(name, performance.now());
    e.target.nextElementSibling.value = value.toFixed(2);
  }

  // The slider moves since the last call, the newest value of each.
  function takeServos() {
    const moved = [...input.servoPending];
    input.servoPending.clear();
    return moved;
  }

  function bind() {
    for (const slider of document.querySelectorAll('input[data-servo]')) {
      slider.addEventListener('input', onServoInput);
    }
    joystick.addEventListener('pointerdown', joystickDown);
    joystick.addEventListener('pointermove', joystickMove);
    joystick.addEventListener('pointerup', joystickUp);
    joystick.addEventListener('pointercancel', joystickUp);
    window.addEventListener('keydown', onKeyDown);
    window.addEventListener('keyup', onKeyUp);
    window.addEventListener('blur', () => { input.keys.clear(); onChange(); });
  }

  return { command: currentCommand, clear: clearInputs, isTyping, takeServos, servoTouchedAt: input.servoTouchedAt, bind };
};
