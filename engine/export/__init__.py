"""Export a design (with fresh or trained weights) to the formats users ship, each verified by
reloading it the way its users will (see :mod:`.formats`)."""
