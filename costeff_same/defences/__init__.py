"""Defences of the efficiency gain against slowdown attacks (chapter 6), one module each.

- :mod:`~costeff_same.defences.sanitiser`: input sanitisation (homoglyph folding, spelling correction);
- :mod:`~costeff_same.defences.guard`: the compute guard (a detector on the exits' trajectory, a cap layer);
- :mod:`~costeff_same.defences.detection`: fitting the guard's detector to a victim, and its ROC;
- :mod:`~costeff_same.defences.adversarial_training`: slowdown-adversarial fine-tuning;
- :mod:`~costeff_same.defences.systems`: a defended system as an attacker queries it, and the
  attacker who knows the defence;
- :mod:`~costeff_same.defences.units`: SAME against a defended system, as a cached unit.
"""
