"""Wire evidence: captures of every link, STUN/TURN decoded, a hop trail per check."""
