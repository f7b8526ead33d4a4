//! The qprom_* functions q binds with 2: (see q/prom.q).
