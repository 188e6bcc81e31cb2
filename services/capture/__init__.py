"""Capture: reads camera sources, samples and motion-gates frames, publishes them to FRAMES."""
