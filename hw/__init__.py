"""Hardware interfaces, real drivers and fakes. The board path: never imports pybullet or sim."""
