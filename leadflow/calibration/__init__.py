"""`leadflow calibrate`: the MQL threshold and signal points, checked against CRM outcomes.

A tool above the layers (it reads the capabilities' contracts and the runtime's codec):

- ``cohort``: MQL handoffs joined with the CRM outcomes that followed them (pure);
- ``maths``: bands, threshold table and rules, lift, the L2 logistic regression (numpy only);
- ``refit``: coefficients -> explainable points within the practitioner ranges;
- ``analysis``: one calibration run, or ``TooFewOutcomes``;
- ``sources``: reading the MQL and CRM status topics, and CSV history;
- ``report`` / ``html``: the terminal tables and the self-contained HTML page;
- ``model_file``: the calibrated copy of the live model file.

Usage and the rules: docs/model-tuning.md ("Calibration").
"""
