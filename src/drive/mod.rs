//! Motors and servos: mixer, deadman watchdog and the GPIO/sim backends.
