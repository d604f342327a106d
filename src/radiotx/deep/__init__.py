"""Deep features of ROI crops: torch encoders (:mod:`~radiotx.deep.networks`), SimCLR
pretraining (:mod:`~radiotx.deep.simclr`) and the scikit-learn transformer that fits them
inside the folds (:mod:`~radiotx.deep.encoder`)."""
