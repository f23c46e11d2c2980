"""`leadflow whatif`: replay the retained input history with a candidate scoring model, offline
(pure replay in ``replay``, Kafka reading in ``source``, terminal tables in ``report``)."""
