;; SGD with momentum over flat float32 vectors, 4 values at a time: the update FlatMomentum
;; (train/parallel/shardStep.ts) applies, in the same float32 arithmetic. Each f32x4 operation
;; rounds every lane once, as Math.fround does after each JS operation, so the results are bit
;; for bit those of the JS loop and of tf.train.momentum. The module imports a shared memory that
;; holds every vector of the update (FlatVectors, train/flatVectors.ts): the data-parallel threads
;; each instantiate it on the same memory and update their own ranges. Pointers are byte offsets.
(module
  (import "env" "memory" (memory 1 65536 shared))

  ;; For k in [from, to):
  ;;   g = gradient_0[k] (+ half * (2 * weights[k]) where half > 0: tfjs's L2 decay gradient)
  ;;       + gradient_1[k] + ... + gradient_{count-1}[k]   (added in that order)
  ;;   a = m * accumulation[k] + g;  accumulation[k] = a;  weights[k] = c * a + weights[k]
  ;; (c = -learning rate). Gradient s starts at gradients + s * gradientStride. Returns the sum of
  ;; weights[k]^2 (the values on entry) in float64 where half > 0, else 0.
  (func (export "momentumStep")
    (param $weights i32) (param $accumulation i32) (param $gradients i32) (param $gradientStride i32) (param $count i32)
    (param $from i32) (param $to i32) (param $m f32) (param $c f32) (param $half f32) (result f64)
    (local $offset i32) (local $end i32) (local $vectorEnd i32) (local $source i32) (local $s i32)
    (local $decays i32)
    (local $w v128) (local $g v128) (local $a v128) (local $m4 v128) (local $c4 v128) (local $half4 v128)
    (local $squaresLow v128) (local $squaresHigh v128) (local $wLow v128) (local $wHigh v128)
    (local $ws f32) (local $gs f32) (local $as f32) (local $squares f64)
    (local.set $m4 (f32x4.splat (local.get $m)))
    (local.set $c4 (f32x4.splat (local.get $c)))
    (local.set $half4 (f32x4.splat (local.get $half)))
    (local.set $decays (f32.gt (local.get $half) (f32.const 0)))
    (local.set $offset (i32.shl (local.get $from) (i32.const 2)))
    (local.set $end (i32.shl (local.get $to) (i32.const 2)))
    ;; Whole vectors of 4 from `from` on (loads need no alignment), then the remaining values alone.
    (local.set $vectorEnd
      (i32.add (local.get $offset) (i32.and (i32.sub (local.get $end) (local.get $offset)) (i32.const -16))))
    (block $vectorsDone
      (loop $vectors
        (br_if $vectorsDone (i32.ge_u (local.get $offset) (local.get $vectorEnd)))
        (local.set $w (v128.load (i32.add (local.get $weights) (local.get $offset))))
        (local.set $g (v128.load (i32.add (local.get $gradients) (local.get $offset))))
        (if (local.get $decays)
          (then
            (local.set $g (f32x4.add (local.get $g) (f32x4.mul (local.get $half4) (f32x4.add (local.get $w) (local.get $w)))))
            ;; w^2 is exact in float64; two lanes per accumulator.
            (local.set $wLow (f64x2.promote_low_f32x4 (local.get $w)))
            (local.set $wHigh (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $w) (local.get $w))))
            (local.set $squaresLow (f64x2.add (local.get $squaresLow) (f64x2.mul (local.get $wLow) (local.get $wLow))))
            (local.set $squaresHigh (f64x2.add (local.get $squaresHigh) (f64x2.mul (local.get $wHigh) (local.get $wHigh))))))
        (local.set $source (i32.add (local.get $gradients) (local.get $offset)))
        (local.set $s (i32.const 1))
        (block $gradientsDone
          (loop $moreGradients
            (br_if $gradientsDone (i32.ge_u (local.get $s) (local.get $count)))
            (local.set $source (i32.add (local.get $source) (local.get $gradientStride)))
            (local.set $g (f32x4.add (local.get $g) (v128.load (local.get $source))))
            (local.set $s (i32.add (local.get $s) (i32.const 1)))
            (br $moreGradients)))
        (local.set $a
          (f32x4.add (f32x4.mul (local.get $m4) (v128.load (i32.add (local.get $accumulation) (local.get $offset)))) (local.get $g)))
        (v128.store (i32.add (local.get $accumulation) (local.get $offset)) (local.get $a))
        (v128.store (i32.add (local.get $weights) (local.get $offset))
          (f32x4.add (f32x4.mul (local.get $c4) (local.get $a)) (local.get $w)))
        (local.set $offset (i32.add (local.get $offset) (i32.const 16)))
        (br $vectors)))
    (local.set $squares
      (f64.add
        (f64.add (f64x2.extract_lane 0 (local.get $squaresLow)) (f64x2.extract_lane 1 (local.get $squaresLow)))
        (f64.add (f64x2.extract_lane 0 (local.get $squaresHigh)) (f64x2.extract_lane 1 (local.get $squaresHigh)))))
    (block $done
      (loop $scalars
        (br_if $done (i32.ge_u (local.get $offset) (local.get $end)))
        (local.set $ws (f32.load (i32.add (local.get $weights) (local.get $offset))))
        (local.set $gs (f32.load (i32.add (local.get $gradients) (local.get $offset))))
        (if (local.get $decays)
          (then
            (local.set $gs (f32.add (local.get $gs) (f32.mul (local.get $half) (f32.add (local.get $ws) (local.get $ws)))))
            (local.set $squares
              (f64.add (local.get $squares) (f64.mul (f64.promote_f32 (local.get $ws)) (f64.promote_f32 (local.get $ws)))))))
        (local.set $source (i32.add (local.get $gradients) (local.get $offset)))
        (local.set $s (i32.const 1))
        (block $gradientsDone
          (loop $moreGradients
            (br_if $gradientsDone (i32.ge_u (local.get $s) (local.get $count)))
            (local.set $source (i32.add (local.get $source) (local.get $gradientStride)))
            (local.set $gs (f32.add (local.get $gs) (f32.load (local.get $source))))
            (local.set $s (i32.add (local.get $s) (i32.const 1)))
            (br $moreGradients)))
        (local.set $as
          (f32.add (f32.mul (local.get $m) (f32.load (i32.add (local.get $accumulation) (local.get $offset)))) (local.get $gs)))
        (f32.store (i32.add (local.get $accumulation) (local.get $offset)) (local.get $as))
        (f32.store (i32.add (local.get $weights) (local.get $offset))
          (f32.add (f32.mul (local.get $c) (local.get $as)) (local.get $ws)))
        (local.set $offset (i32.add (local.get $offset) (i32.const 4)))
        (br $scalars)))
    (local.get $squares))
)
