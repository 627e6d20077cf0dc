"""What a run observed: ICE candidates and pairs as the standards name them, the call's
timeline, and the wire evidence of a captured run."""
