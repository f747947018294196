"""The runtime every stage runs in: what a stage is and its fingerprint, the run directory, the stage store,
several processes, progress and tracking. Imported by the stages and the layers under them; imports none of
them."""
