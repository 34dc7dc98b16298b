"""Tool actuator (bucket joint) with position feedback and load sensing (MicroPython subset)."""


class ToolActuator:
    """Proportional position control of the tool joint. ``pos_adc`` reads the joint potentiometer,
    ``load_adc`` the load cell amplifier (both ``read_u16``). Above ``load_limit_dn`` the actuator stops and
    reports a stall until the target moves back (towards unloading)."""

    def __init__(
        self,
        motor,
        pos_adc,
        load_adc,
        counts_per_mrad=10,
        pos_offset=32768,
        counts_per_dn=20,
        load_offset=0,
        load_limit_dn=3000,
        kp=4,
        deadband_mrad=10,
    ):
        self.motor = motor
        self.pos_adc = pos_adc
        self.load_adc = load_adc
        self.counts_per_mrad = counts_per_mrad
        self.pos_offset = pos_offset
        self.counts_per_dn = counts_per_dn
        self.load_offset = load_offset
        self.load_limit_dn = load_limit_dn
        self.kp = kp
        self.deadband_mrad = deadband_mrad
        self.target_mrad = 0
        self.position_mrad = 0
        self.load_dn = 0
        self.stalled = False

    def set_target(self, mrad):
        if self.stalled and mrad < self.target_mrad:
            self.stalled = False  # moving back (raising the lip) releases the stall
        self.target_mrad = mrad

    def sense(self):
        self.position_mrad = (self.pos_adc.read_u16() - self.pos_offset) // self.counts_per_mrad
        self.load_dn = (self.load_adc.read_u16() - self.load_offset) // self.counts_per_dn

    def update(self, enabled):
        self.sense()
        if self.load_dn > self.load_limit_dn:
            self.stalled = True
        if not enabled or self.stalled:
            self.motor.stop()
            return
        err = self.target_mrad - self.position_mrad
        if -self.deadband_mrad <= err <= self.deadband_mrad:
            self.motor.stop()
        else:
            self.motor.set(err * self.kp)

    def stop(self):
        self.motor.stop()
