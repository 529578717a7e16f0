;; Training kernels of PaS that need 128-bit SIMD and are missing from tfjs-backend-wasm's XNNPACK
;; build. The module has no memory of its own: it imports the wasm backend's heap, so it reads and
;; writes tensors where they live. Pointers are byte offsets into that heap (unsigned: tfjs's
;; allocations may lie above 2 GB). Compiled to kernelsWasm.ts by scripts/build-simd-kernels.js.
(module
  (import "env" "memory" (memory 1))

  ;; out[i] = dy[i] where lo <= x[i] <= hi (both ends included), else +0: the gradient of
  ;; ClipByValue (ReLU6), as tfjs defines it. NaN compares false, so a NaN x passes nothing.
  (func (export "clipGradient")
    (param $x i32) (param $dy i32) (param $out i32) (param $count i32) (param $lo f32) (param $hi f32)
    (local $offset i32) (local $end i32) (local $vectorEnd i32) (local $lo4 v128) (local $hi4 v128) (local $v v128) (local $value f32)
    (local.set $lo4 (f32x4.splat (local.get $lo)))
    (local.set $hi4 (f32x4.splat (local.get $hi)))
    (local.set $end (i32.shl (local.get $count) (i32.const 2)))
    (local.set $vectorEnd (i32.shl (i32.and (local.get $count) (i32.const -4)) (i32.const 2)))
    (block $vectorsDone
      (loop $vectors
        (br_if $vectorsDone (i32.ge_u (local.get $offset) (local.get $vectorEnd)))
        (local.set $v (v128.load (i32.add (local.get $x) (local.get $offset))))
        (v128.store (i32.add (local.get $out) (local.get $offset))
          (v128.and
            (v128.load (i32.add (local.get $dy) (local.get $offset)))
            (v128.and (f32x4.ge (local.get $v) (local.get $lo4)) (f32x4.le (local.get $v) (local.get $hi4)))))
        (local.set $offset (i32.add (local.get $offset) (i32.const 16)))
        (br $vectors)))
    (block $done
      (loop $scalars
        (br_if $done (i32.ge_u (local.get $offset) (local.get $end)))
        (local.set $value (f32.load (i32.add (local.get $x) (local.get $offset))))
        (f32.store (i32.add (local.get $out) (local.get $offset))
          (select
            (f32.load (i32.add (local.get $dy) (local.get $offset)))
            (f32.const 0)
            (i32.and (f32.ge (local.get $value) (local.get $lo)) (f32.le (local.get $value) (local.get $hi)))))
        (local.set $offset (i32.add (local.get $offset) (i32.const 4)))
        (br $scalars))))

  ;; The input gradient of a depthwise convolution (channel multiplier 1), straight from dy:
  ;;   dx[b, iy, ix, c] = sum over taps (ky, kx) with iy + top - ky = oy * strideY and
  ;;   ix + left - kx = ox * strideX (0 <= oy < outHeight, 0 <= ox < outWidth) of dy[b, oy, ox, c] * w[ky, kx, c]
  ;; w is [kh, kw, channels]; dx is written, not added to. Each dx pixel's channels are zeroed, then
  ;; every tap that reaches it adds its products, 4 channels per instruction (the row stays in L1),
  ;; taps in (ky, kx) order. A strided layer has no zeros to multiply: XNNPACK's depthwise
  ;; convolution, which serves stride 1, needs dy spread out with zeros between its values
  ;; (4x the multiply-adds at stride 2) and a spread copy made by a JS loop.
  (func (export "depthwiseInputGradient")
    (param $dy i32) (param $w i32) (param $dx i32) (param $batch i32) (param $channels i32) (param $inHeight i32) (param $inWidth i32)
    (param $outHeight i32) (param $outWidth i32) (param $kh i32) (param $kw i32) (param $strideY i32) (param $strideX i32)
    (param $top i32) (param $left i32)
    (local $b i32) (local $iy i32) (local $ix i32) (local $ky i32) (local $kx i32) (local $ny i32) (local $nx i32)
    (local $oy i32) (local $ox i32) (local $rowBytes i32) (local $vectorEnd i32) (local $off i32)
    (local $out i32) (local $src i32) (local $wp i32)
    (local.set $rowBytes (i32.shl (local.get $channels) (i32.const 2)))
    (local.set $vectorEnd (i32.shl (i32.and (local.get $channels) (i32.const -4)) (i32.const 2)))
    (local.set $out (local.get $dx))
    (local.set $b (i32.const 0))
    (block $imagesDone (loop $images
      (br_if $imagesDone (i32.ge_s (local.get $b) (local.get $batch)))
      (local.set $iy (i32.const 0))
      (block $rowsDone (loop $rows
        (br_if $rowsDone (i32.ge_s (local.get $iy) (local.get $inHeight)))
        (local.set $ix (i32.const 0))
        (block $pixelsDone (loop $pixels
          (br_if $pixelsDone (i32.ge_s (local.get $ix) (local.get $inWidth)))
          (memory.fill (local.get $out) (i32.const 0) (local.get $rowBytes))
          (local.set $ky (i32.const 0))
          (block $tapRowsDone (loop $tapRows
            (br_if $tapRowsDone (i32.ge_s (local.get $ky) (local.get $kh)))
            (local.set $ny (i32.sub (i32.add (local.get $iy) (local.get $top)) (local.get $ky)))
            (local.set $oy (i32.div_s (local.get $ny) (local.get $strideY)))
            (if (i32.and
                  (i32.and (i32.ge_s (local.get $ny) (i32.const 0)) (i32.lt_s (local.get $oy) (local.get $outHeight)))
                  (i32.eq (i32.mul (local.get $oy) (local.get $strideY)) (local.get $ny)))
              (then
                (local.set $kx (i32.const 0))
                (block $tapsDone (loop $taps
                  (br_if $tapsDone (i32.ge_s (local.get $kx) (local.get $kw)))
                  (local.set $nx (i32.sub (i32.add (local.get $ix) (local.get $left)) (local.get $kx)))
                  (local.set $ox (i32.div_s (local.get $nx) (local.get $strideX)))
                  (if (i32.and
                        (i32.and (i32.ge_s (local.get $nx) (i32.const 0)) (i32.lt_s (local.get $ox) (local.get $outWidth)))
                        (i32.eq (i32.mul (local.get $ox) (local.get $strideX)) (local.get $nx)))
                    (then
                      (local.set $src (i32.add (local.get $dy) (i32.mul
                        (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $outHeight)) (local.get $oy)) (local.get $outWidth)) (local.get $ox))
                        (local.get $rowBytes))))
                      (local.set $wp (i32.add (local.get $w) (i32.mul (i32.add (i32.mul (local.get $ky) (local.get $kw)) (local.get $kx)) (local.get $rowBytes))))
                      (local.set $off (i32.const 0))
                      (block $vectorsDone (loop $vectors
                        (br_if $vectorsDone (i32.ge_u (local.get $off) (local.get $vectorEnd)))
                        (v128.store (i32.add (local.get $out) (local.get $off))
                          (f32x4.add (v128.load (i32.add (local.get $out) (local.get $off)))
                            (f32x4.mul (v128.load (i32.add (local.get $src) (local.get $off))) (v128.load (i32.add (local.get $wp) (local.get $off))))))
                        (local.set $off (i32.add (local.get $off) (i32.const 16)))
                        (br $vectors)))
                      (block $scalarsDone (loop $scalars
                        (br_if $scalarsDone (i32.ge_u (local.get $off) (local.get $rowBytes)))
                        (f32.store (i32.add (local.get $out) (local.get $off))
                          (f32.add (f32.load (i32.add (local.get $out) (local.get $off)))
                            (f32.mul (f32.load (i32.add (local.get $src) (local.get $off))) (f32.load (i32.add (local.get $wp) (local.get $off))))))
                        (local.set $off (i32.add (local.get $off) (i32.const 4)))
                        (br $scalars)))))
                  (local.set $kx (i32.add (local.get $kx) (i32.const 1)))
                  (br $taps)))))
            (local.set $ky (i32.add (local.get $ky) (i32.const 1)))
            (br $tapRows)))
          (local.set $out (i32.add (local.get $out) (local.get $rowBytes)))
          (local.set $ix (i32.add (local.get $ix) (i32.const 1)))
          (br $pixels)))
        (local.set $iy (i32.add (local.get $iy) (i32.const 1)))
        (br $rows)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $images))))

  ;; One filter tap's share of a depthwise convolution's filter gradient (channel multiplier 1):
  ;; acc[ch] += sum over images b, output rows oy, output columns ox in [0, columns) of
  ;;   x[b, oy * strideY + rowOffset, firstColumn + ox * strideX, ch] * dy[b, oy, firstOutColumn + ox, ch]
  ;; `acc` holds `channels` doubles. Rows whose input row falls outside [0, inHeight) are skipped
  ;; (padding); the caller picks the columns so that every input column lies inside the image.
  ;; Each output row's products are summed in float32 lanes (at most a row's width of them), then
  ;; added to the double accumulators, so long sums over a whole batch keep their digits.
  (func (export "depthwiseTapGradient")
    (param $x i32) (param $dy i32) (param $acc i32)
    (param $batch i32) (param $inHeight i32) (param $inWidth i32) (param $channels i32)
    (param $outHeight i32) (param $outWidth i32) (param $strideY i32) (param $strideX i32)
    (param $rowOffset i32) (param $firstColumn i32) (param $firstOutColumn i32) (param $columns i32)
    (local $b i32) (local $oy i32) (local $iy i32) (local $ch i32) (local $ox i32)
    (local $xRow i32) (local $dyRow i32) (local $px i32) (local $pd i32)
    (local $xStep i32) (local $dyStep i32) (local $blockEnd16 i32) (local $blockEnd4 i32)
    (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128) (local $s f32) (local $a i32)
    (if (i32.le_s (local.get $columns) (i32.const 0)) (then (return)))
    (local.set $xStep (i32.shl (i32.mul (local.get $strideX) (local.get $channels)) (i32.const 2)))
    (local.set $dyStep (i32.shl (local.get $channels) (i32.const 2)))
    (local.set $blockEnd16 (i32.and (local.get $channels) (i32.const -16)))
    (local.set $blockEnd4 (i32.and (local.get $channels) (i32.const -4)))
    (local.set $b (i32.const 0))
    (block $imagesDone (loop $images
      (br_if $imagesDone (i32.ge_s (local.get $b) (local.get $batch)))
      (local.set $oy (i32.const 0))
      (block $rowsDone (loop $rows
        (br_if $rowsDone (i32.ge_s (local.get $oy) (local.get $outHeight)))
        (local.set $iy (i32.add (i32.mul (local.get $oy) (local.get $strideY)) (local.get $rowOffset)))
        (if (i32.and (i32.ge_s (local.get $iy) (i32.const 0)) (i32.lt_s (local.get $iy) (local.get $inHeight)))
          (then
            (local.set $xRow (i32.add (local.get $x) (i32.shl
              (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $inHeight)) (local.get $iy)) (local.get $inWidth)) (local.get $firstColumn)) (local.get $channels))
              (i32.const 2))))
            (local.set $dyRow (i32.add (local.get $dy) (i32.shl
              (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $outHeight)) (local.get $oy)) (local.get $outWidth)) (local.get $firstOutColumn)) (local.get $channels))
              (i32.const 2))))
            ;; 16 channels at a time: four independent sums hide the add latency.
            (local.set $ch (i32.const 0))
            (block $blocks16Done (loop $blocks16
              (br_if $blocks16Done (i32.ge_s (local.get $ch) (local.get $blockEnd16)))
              (local.set $s0 (v128.const i32x4 0 0 0 0))
              (local.set $s1 (v128.const i32x4 0 0 0 0))
              (local.set $s2 (v128.const i32x4 0 0 0 0))
              (local.set $s3 (v128.const i32x4 0 0 0 0))
              (local.set $px (i32.add (local.get $xRow) (i32.shl (local.get $ch) (i32.const 2))))
              (local.set $pd (i32.add (local.get $dyRow) (i32.shl (local.get $ch) (i32.const 2))))
              (local.set $ox (local.get $columns))
              (loop $columns16
                (local.set $s0 (f32x4.add (local.get $s0) (f32x4.mul (v128.load offset=0 (local.get $px)) (v128.load offset=0 (local.get $pd)))))
                (local.set $s1 (f32x4.add (local.get $s1) (f32x4.mul (v128.load offset=16 (local.get $px)) (v128.load offset=16 (local.get $pd)))))
                (local.set $s2 (f32x4.add (local.get $s2) (f32x4.mul (v128.load offset=32 (local.get $px)) (v128.load offset=32 (local.get $pd)))))
                (local.set $s3 (f32x4.add (local.get $s3) (f32x4.mul (v128.load offset=48 (local.get $px)) (v128.load offset=48 (local.get $pd)))))
                (local.set $px (i32.add (local.get $px) (local.get $xStep)))
                (local.set $pd (i32.add (local.get $pd) (local.get $dyStep)))
                (local.set $ox (i32.sub (local.get $ox) (i32.const 1)))
                (br_if $columns16 (i32.gt_s (local.get $ox) (i32.const 0))))
              (local.set $a (i32.add (local.get $acc) (i32.shl (local.get $ch) (i32.const 3))))
              (call $addToDoubles (local.get $a) (local.get $s0))
              (call $addToDoubles (i32.add (local.get $a) (i32.const 32)) (local.get $s1))
              (call $addToDoubles (i32.add (local.get $a) (i32.const 64)) (local.get $s2))
              (call $addToDoubles (i32.add (local.get $a) (i32.const 96)) (local.get $s3))
              (local.set $ch (i32.add (local.get $ch) (i32.const 16)))
              (br $blocks16)))
            (block $blocks4Done (loop $blocks4
              (br_if $blocks4Done (i32.ge_s (local.get $ch) (local.get $blockEnd4)))
              (local.set $s0 (v128.const i32x4 0 0 0 0))
              (local.set $px (i32.add (local.get $xRow) (i32.shl (local.get $ch) (i32.const 2))))
              (local.set $pd (i32.add (local.get $dyRow) (i32.shl (local.get $ch) (i32.const 2))))
              (local.set $ox (local.get $columns))
              (loop $columns4
                (local.set $s0 (f32x4.add (local.get $s0) (f32x4.mul (v128.load (local.get $px)) (v128.load (local.get $pd)))))
                (local.set $px (i32.add (local.get $px) (local.get $xStep)))
                (local.set $pd (i32.add (local.get $pd) (local.get $dyStep)))
                (local.set $ox (i32.sub (local.get $ox) (i32.const 1)))
                (br_if $columns4 (i32.gt_s (local.get $ox) (i32.const 0))))
              (call $addToDoubles (i32.add (local.get $acc) (i32.shl (local.get $ch) (i32.const 3))) (local.get $s0))
              (local.set $ch (i32.add (local.get $ch) (i32.const 4)))
              (br $blocks4)))
            (block $singlesDone (loop $singles
              (br_if $singlesDone (i32.ge_s (local.get $ch) (local.get $channels)))
              (local.set $s (f32.const 0))
              (local.set $px (i32.add (local.get $xRow) (i32.shl (local.get $ch) (i32.const 2))))
              (local.set $pd (i32.add (local.get $dyRow) (i32.shl (local.get $ch) (i32.const 2))))
              (local.set $ox (local.get $columns))
              (loop $columns1
                (local.set $s (f32.add (local.get $s) (f32.mul (f32.load (local.get $px)) (f32.load (local.get $pd)))))
                (local.set $px (i32.add (local.get $px) (local.get $xStep)))
                (local.set $pd (i32.add (local.get $pd) (local.get $dyStep)))
                (local.set $ox (i32.sub (local.get $ox) (i32.const 1)))
                (br_if $columns1 (i32.gt_s (local.get $ox) (i32.const 0))))
              (local.set $a (i32.add (local.get $acc) (i32.shl (local.get $ch) (i32.const 3))))
              (f64.store (local.get $a) (f64.add (f64.load (local.get $a)) (f64.promote_f32 (local.get $s))))
              (local.set $ch (i32.add (local.get $ch) (i32.const 1)))
              (br $singles)))))
        (local.set $oy (i32.add (local.get $oy) (i32.const 1)))
        (br $rows)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $images))))

  ;; acc[0..3] (doubles at `a`) += the four float32 lanes of `s`.
  (func $addToDoubles (param $a i32) (param $s v128)
    (v128.store offset=0 (local.get $a) (f64x2.add (v128.load offset=0 (local.get $a)) (f64x2.promote_low_f32x4 (local.get $s))))
    (v128.store offset=16 (local.get $a) (f64x2.add (v128.load offset=16 (local.get $a))
      (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $s) (local.get $s))))))

  ;; out[i] = (float32) acc[i] for i < count; then acc is free again.
  (func (export "doublesToFloats") (param $acc i32) (param $out i32) (param $count i32)
    (local $i i32)
    (block $done (loop $each
      (br_if $done (i32.ge_s (local.get $i) (local.get $count)))
      (f32.store (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2)))
        (f32.demote_f64 (f64.load (i32.add (local.get $acc) (i32.shl (local.get $i) (i32.const 3))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $each))))
  ;; ---- BatchNormalization in training mode: per-channel sums over the pixels, and affine maps.
  ;; Tensors are [pixels, channels] (NHWC with N*H*W pixels). Sums run over chunks of 64 pixels in
  ;; float32 lanes, two pixels at a time (two independent sums), and each chunk's sums are added to
  ;; double accumulators: a batch's millions of values keep their digits.

  ;; accU[ch] += sum of u[p, ch]; with $v != 0 also accUV[ch] += sum of u[p, ch] * v[p, ch];
  ;; with $mean != 0 instead accU[ch] += sum of (u[p, ch] - mean[ch])^2 (mean: float32[channels]).
  (func (export "channelSums")
    (param $u i32) (param $v i32) (param $mean i32) (param $pixels i32) (param $channels i32) (param $accU i32) (param $accUV i32)
    (local $chunk i32) (local $chunkEnd i32) (local $ch i32) (local $blockEnd i32) (local $p i32)
    (local $pu i32) (local $pv i32) (local $rowBytes i32) (local $offset i32)
    (local $su0 v128) (local $su1 v128) (local $suv0 v128) (local $suv1 v128) (local $m v128) (local $d0 v128) (local $d1 v128)
    (local $tu f32) (local $tuv f32) (local $ms f32) (local $e f32) (local $a i32)
    (local.set $rowBytes (i32.shl (local.get $channels) (i32.const 2)))
    (local.set $blockEnd (i32.and (local.get $channels) (i32.const -4)))
    (block $chunksDone (loop $chunks
      (br_if $chunksDone (i32.ge_s (local.get $chunk) (local.get $pixels)))
      (local.set $chunkEnd (select (local.get $pixels) (i32.add (local.get $chunk) (i32.const 64))
        (i32.lt_s (local.get $pixels) (i32.add (local.get $chunk) (i32.const 64)))))
      (local.set $ch (i32.const 0))
      (block $blocksDone (loop $blocks
        (br_if $blocksDone (i32.ge_s (local.get $ch) (local.get $blockEnd)))
        (local.set $offset (i32.add (i32.mul (local.get $chunk) (local.get $rowBytes)) (i32.shl (local.get $ch) (i32.const 2))))
        (local.set $pu (i32.add (local.get $u) (local.get $offset)))
        (local.set $pv (i32.add (local.get $v) (local.get $offset)))
        (local.set $su0 (v128.const i32x4 0 0 0 0)) (local.set $su1 (v128.const i32x4 0 0 0 0))
        (local.set $suv0 (v128.const i32x4 0 0 0 0)) (local.set $suv1 (v128.const i32x4 0 0 0 0))
        (if (local.get $mean) (then (local.set $m (v128.load (i32.add (local.get $mean) (i32.shl (local.get $ch) (i32.const 2)))))))
        (local.set $p (local.get $chunk))
        (block $pairsDone (loop $pairs
          (br_if $pairsDone (i32.ge_s (i32.add (local.get $p) (i32.const 1)) (local.get $chunkEnd)))
          (if (local.get $mean)
            (then
              (local.set $d0 (f32x4.sub (v128.load (local.get $pu)) (local.get $m)))
              (local.set $d1 (f32x4.sub (v128.load (i32.add (local.get $pu) (local.get $rowBytes))) (local.get $m)))
              (local.set $su0 (f32x4.add (local.get $su0) (f32x4.mul (local.get $d0) (local.get $d0))))
              (local.set $su1 (f32x4.add (local.get $su1) (f32x4.mul (local.get $d1) (local.get $d1)))))
            (else
              (local.set $d0 (v128.load (local.get $pu)))
              (local.set $d1 (v128.load (i32.add (local.get $pu) (local.get $rowBytes))))
              (local.set $su0 (f32x4.add (local.get $su0) (local.get $d0)))
              (local.set $su1 (f32x4.add (local.get $su1) (local.get $d1)))
              (if (local.get $v) (then
                (local.set $suv0 (f32x4.add (local.get $suv0) (f32x4.mul (local.get $d0) (v128.load (local.get $pv)))))
                (local.set $suv1 (f32x4.add (local.get $suv1) (f32x4.mul (local.get $d1) (v128.load (i32.add (local.get $pv) (local.get $rowBytes))))))))))
          (local.set $pu (i32.add (local.get $pu) (i32.shl (local.get $rowBytes) (i32.const 1))))
          (local.set $pv (i32.add (local.get $pv) (i32.shl (local.get $rowBytes) (i32.const 1))))
          (local.set $p (i32.add (local.get $p) (i32.const 2)))
          (br $pairs)))
        (if (i32.lt_s (local.get $p) (local.get $chunkEnd))
          (then
            (if (local.get $mean)
              (then
                (local.set $d0 (f32x4.sub (v128.load (local.get $pu)) (local.get $m)))
                (local.set $su0 (f32x4.add (local.get $su0) (f32x4.mul (local.get $d0) (local.get $d0)))))
              (else
                (local.set $d0 (v128.load (local.get $pu)))
                (local.set $su0 (f32x4.add (local.get $su0) (local.get $d0)))
                (if (local.get $v) (then
                  (local.set $suv0 (f32x4.add (local.get $suv0) (f32x4.mul (local.get $d0) (v128.load (local.get $pv)))))))))))
        (call $addToDoubles (i32.add (local.get $accU) (i32.shl (local.get $ch) (i32.const 3))) (f32x4.add (local.get $su0) (local.get $su1)))
        (if (local.get $v) (then
          (call $addToDoubles (i32.add (local.get $accUV) (i32.shl (local.get $ch) (i32.const 3))) (f32x4.add (local.get $suv0) (local.get $suv1)))))
        (local.set $ch (i32.add (local.get $ch) (i32.const 4)))
        (br $blocks)))
      ;; the last channels % 4, one at a time
      (block $singlesDone (loop $singles
        (br_if $singlesDone (i32.ge_s (local.get $ch) (local.get $channels)))
        (local.set $offset (i32.add (i32.mul (local.get $chunk) (local.get $rowBytes)) (i32.shl (local.get $ch) (i32.const 2))))
        (local.set $pu (i32.add (local.get $u) (local.get $offset)))
        (local.set $pv (i32.add (local.get $v) (local.get $offset)))
        (local.set $tu (f32.const 0)) (local.set $tuv (f32.const 0))
        (if (local.get $mean) (then (local.set $ms (f32.load (i32.add (local.get $mean) (i32.shl (local.get $ch) (i32.const 2)))))))
        (local.set $p (local.get $chunk))
        (block $pixelsDone (loop $pixelsLoop
          (br_if $pixelsDone (i32.ge_s (local.get $p) (local.get $chunkEnd)))
          (if (local.get $mean)
            (then
              (local.set $e (f32.sub (f32.load (local.get $pu)) (local.get $ms)))
              (local.set $tu (f32.add (local.get $tu) (f32.mul (local.get $e) (local.get $e)))))
            (else
              (local.set $e (f32.load (local.get $pu)))
              (local.set $tu (f32.add (local.get $tu) (local.get $e)))
              (if (local.get $v) (then (local.set $tuv (f32.add (local.get $tuv) (f32.mul (local.get $e) (f32.load (local.get $pv)))))))))
          (local.set $pu (i32.add (local.get $pu) (local.get $rowBytes)))
          (local.set $pv (i32.add (local.get $pv) (local.get $rowBytes)))
          (local.set $p (i32.add (local.get $p) (i32.const 1)))
          (br $pixelsLoop)))
        (local.set $a (i32.add (local.get $accU) (i32.shl (local.get $ch) (i32.const 3))))
        (f64.store (local.get $a) (f64.add (f64.load (local.get $a)) (f64.promote_f32 (local.get $tu))))
        (if (local.get $v) (then
          (local.set $a (i32.add (local.get $accUV) (i32.shl (local.get $ch) (i32.const 3))))
          (f64.store (local.get $a) (f64.add (f64.load (local.get $a)) (f64.promote_f32 (local.get $tuv))))))
        (local.set $ch (i32.add (local.get $ch) (i32.const 1)))
        (br $singles)))
      (local.set $chunk (local.get $chunkEnd))
      (br $chunks))))

  ;; out[p, ch] = a[ch] * u[p, ch] + b[ch] * v[p, ch] + c[ch] (a, b, c: float32[channels]);
  ;; with $v = 0, out = a * u + c. `out` may be `u` or `v` (each value is read before it is written).
  (func (export "channelAffine")
    (param $u i32) (param $v i32) (param $pixels i32) (param $channels i32) (param $a i32) (param $b i32) (param $c i32) (param $out i32)
    (local $p i32) (local $ch i32) (local $blockEnd i32) (local $row i32) (local $k i32) (local $r v128)
    (local.set $blockEnd (i32.and (local.get $channels) (i32.const -4)))
    (block $pixelsDone (loop $pixelsLoop
      (br_if $pixelsDone (i32.ge_s (local.get $p) (local.get $pixels)))
      (local.set $row (i32.shl (i32.mul (local.get $p) (local.get $channels)) (i32.const 2)))
      (local.set $ch (i32.const 0))
      (block $blocksDone (loop $blocks
        (br_if $blocksDone (i32.ge_s (local.get $ch) (local.get $blockEnd)))
        (local.set $k (i32.shl (local.get $ch) (i32.const 2)))
        (local.set $r (f32x4.add
          (f32x4.mul (v128.load (i32.add (local.get $a) (local.get $k))) (v128.load (i32.add (local.get $u) (i32.add (local.get $row) (local.get $k)))))
          (v128.load (i32.add (local.get $c) (local.get $k)))))
        (if (local.get $v) (then
          (local.set $r (f32x4.add (local.get $r)
            (f32x4.mul (v128.load (i32.add (local.get $b) (local.get $k))) (v128.load (i32.add (local.get $v) (i32.add (local.get $row) (local.get $k)))))))))
        (v128.store (i32.add (local.get $out) (i32.add (local.get $row) (local.get $k))) (local.get $r))
        (local.set $ch (i32.add (local.get $ch) (i32.const 4)))
        (br $blocks)))
      (block $singlesDone (loop $singles
        (br_if $singlesDone (i32.ge_s (local.get $ch) (local.get $channels)))
        (local.set $k (i32.shl (local.get $ch) (i32.const 2)))
        (f32.store (i32.add (local.get $out) (i32.add (local.get $row) (local.get $k)))
          (f32.add
            (f32.add
              (f32.mul (f32.load (i32.add (local.get $a) (local.get $k))) (f32.load (i32.add (local.get $u) (i32.add (local.get $row) (local.get $k)))))
              (f32.load (i32.add (local.get $c) (local.get $k))))
            (if (result f32) (local.get $v)
              (then (f32.mul (f32.load (i32.add (local.get $b) (local.get $k))) (f32.load (i32.add (local.get $v) (i32.add (local.get $row) (local.get $k))))))
              (else (f32.const 0)))))
        (local.set $ch (i32.add (local.get $ch) (i32.const 1)))
        (br $singles)))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $pixelsLoop))))

  ;; count (>= 0) float zeros at byte offset at: four per store, then singles.
  (func $zeroFloats (param $at i32) (param $count i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $at) (i32.shl (local.get $count) (i32.const 2))))
    (block $quadsDone (loop $quads
      (br_if $quadsDone (i32.gt_u (i32.add (local.get $at) (i32.const 16)) (local.get $end)))
      (v128.store (local.get $at) (v128.const i32x4 0 0 0 0))
      (local.set $at (i32.add (local.get $at) (i32.const 16)))
      (br $quads)))
    (block $done (loop $singles
      (br_if $done (i32.ge_u (local.get $at) (local.get $end)))
      (f32.store (local.get $at) (f32.const 0))
      (local.set $at (i32.add (local.get $at) (i32.const 4)))
      (br $singles))))

  ;; The transposed patch matrix of a convolution's filter gradient (im2col, one row per filter tap
  ;; and input channel) over images firstImage .. firstImage + batch - 1 of x:
  ;; out[((ky * kw + kx) * channels + c) * P + (b * outHeight + oy) * outWidth + ox]
  ;;   = x[c, firstImage + b, oy * strideY - top + ky, ox * strideX - left + kx], or +0 where that
  ;; lies in the padding; P = batch * outHeight * outWidth and x is the input moved to
  ;; [channels, totalImages, h, w], so each output row is a walk along one input row (a plain copy
  ;; at stride 1).
  (func (export "transposedPatches")
    (param $x i32) (param $out i32) (param $firstImage i32) (param $batch i32) (param $totalImages i32) (param $channels i32)
    (param $inHeight i32) (param $inWidth i32) (param $outHeight i32) (param $outWidth i32)
    (param $kh i32) (param $kw i32) (param $strideY i32) (param $strideX i32) (param $top i32) (param $left i32)
    (local $ky i32) (local $kx i32) (local $c i32) (local $b i32) (local $oy i32) (local $iy i32)
    (local $oxFirst i32) (local $oxEnd i32) (local $to i32) (local $from i32) (local $rowBytes i32)
    (local $imageBase i32) (local $ox i32) (local $fromStep i32)
    (local.set $rowBytes (i32.shl (local.get $outWidth) (i32.const 2)))
    (local.set $fromStep (i32.shl (local.get $strideX) (i32.const 2)))
    (local.set $to (local.get $out))
    (local.set $ky (i32.const 0))
    (block $tapRowsDone (loop $tapRows
      (br_if $tapRowsDone (i32.ge_s (local.get $ky) (local.get $kh)))
      (local.set $kx (i32.const 0))
      (block $tapsDone (loop $taps
        (br_if $tapsDone (i32.ge_s (local.get $kx) (local.get $kw)))
        ;; Output columns whose input column ox * strideX - left + kx lies inside the image:
        ;; ceil((left - kx) / strideX) .. floor((inWidth - 1 + left - kx) / strideX), clamped.
        (local.set $oxFirst (i32.sub (local.get $left) (local.get $kx)))
        (local.set $oxFirst
          (select (i32.div_s (i32.add (local.get $oxFirst) (i32.sub (local.get $strideX) (i32.const 1))) (local.get $strideX))
                  (i32.const 0)
                  (i32.gt_s (local.get $oxFirst) (i32.const 0))))
        (local.set $oxEnd (i32.add (i32.div_s (i32.add (i32.sub (local.get $inWidth) (i32.const 1)) (i32.sub (local.get $left) (local.get $kx))) (local.get $strideX)) (i32.const 1)))
        ;; inWidth - 1 + left - kx < 0 (a tap that never reaches the image) leaves oxEnd <= 0.
        (if (i32.lt_s (i32.add (i32.sub (local.get $inWidth) (i32.const 1)) (i32.sub (local.get $left) (local.get $kx))) (i32.const 0))
          (then (local.set $oxEnd (i32.const 0))))
        (if (i32.gt_s (local.get $oxEnd) (local.get $outWidth)) (then (local.set $oxEnd (local.get $outWidth))))
        (if (i32.lt_s (local.get $oxEnd) (local.get $oxFirst)) (then (local.set $oxEnd (local.get $oxFirst))))
        (local.set $c (i32.const 0))
        (block $channelsDone (loop $channelLoop
          (br_if $channelsDone (i32.ge_s (local.get $c) (local.get $channels)))
          (local.set $b (i32.const 0))
          (block $imagesDone (loop $images
            (br_if $imagesDone (i32.ge_s (local.get $b) (local.get $batch)))
            ;; x[c, firstImage + b] starts at ((c * totalImages + firstImage + b) * inHeight) * inWidth.
            (local.set $imageBase (i32.mul (i32.mul
              (i32.add (i32.mul (local.get $c) (local.get $totalImages)) (i32.add (local.get $firstImage) (local.get $b)))
              (local.get $inHeight)) (local.get $inWidth)))
            (local.set $oy (i32.const 0))
            (block $rowsDone (loop $rows
              (br_if $rowsDone (i32.ge_s (local.get $oy) (local.get $outHeight)))
              (local.set $iy (i32.add (i32.sub (i32.mul (local.get $oy) (local.get $strideY)) (local.get $top)) (local.get $ky)))
              ;; Row padding (iy outside the image) is all zeros; otherwise zeros, the copied
              ;; columns [oxFirst, oxEnd), zeros. Inline loops, not memory.copy / memory.fill: rows
              ;; are 2-32 values, and each bulk-memory instruction is a call into the runtime.
              (if (i32.or (i32.lt_s (local.get $iy) (i32.const 0)) (i32.ge_s (local.get $iy) (local.get $inHeight)))
                (then (call $zeroFloats (local.get $to) (local.get $outWidth)))
                (else
                  (call $zeroFloats (local.get $to) (local.get $oxFirst))
                  (call $zeroFloats
                    (i32.add (local.get $to) (i32.shl (local.get $oxEnd) (i32.const 2)))
                    (i32.sub (local.get $outWidth) (local.get $oxEnd)))
                  ;; Byte offset of x[image, iy, oxFirst * strideX - left + kx].
                  (local.set $from (i32.add (local.get $x) (i32.shl
                    (i32.add (i32.add (local.get $imageBase) (i32.mul (local.get $iy) (local.get $inWidth)))
                             (i32.add (i32.sub (i32.mul (local.get $oxFirst) (local.get $strideX)) (local.get $left)) (local.get $kx)))
                    (i32.const 2))))
                  (local.set $ox (local.get $oxFirst))
                  (if (i32.eq (local.get $strideX) (i32.const 1))
                    (then
                      (block $quadsDone (loop $quads
                        (br_if $quadsDone (i32.gt_s (i32.add (local.get $ox) (i32.const 4)) (local.get $oxEnd)))
                        (v128.store (i32.add (local.get $to) (i32.shl (local.get $ox) (i32.const 2))) (v128.load (local.get $from)))
                        (local.set $from (i32.add (local.get $from) (i32.const 16)))
                        (local.set $ox (i32.add (local.get $ox) (i32.const 4)))
                        (br $quads)))))
                  (if (i32.eq (local.get $strideX) (i32.const 2))
                    (then
                      ;; Four outputs from eight inputs (the even ones). The loads reach one value
                      ;; past the fourth output's input, so this stops while a fifth output remains:
                      ;; that value is then inside the row.
                      (block $pairsDone (loop $pairs
                        (br_if $pairsDone (i32.gt_s (i32.add (local.get $ox) (i32.const 5)) (local.get $oxEnd)))
                        (v128.store (i32.add (local.get $to) (i32.shl (local.get $ox) (i32.const 2)))
                          (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27
                            (v128.load (local.get $from))
                            (v128.load (i32.add (local.get $from) (i32.const 16)))))
                        (local.set $from (i32.add (local.get $from) (i32.const 32)))
                        (local.set $ox (i32.add (local.get $ox) (i32.const 4)))
                        (br $pairs)))))
                  (block $columnsDone (loop $columns
                    (br_if $columnsDone (i32.ge_s (local.get $ox) (local.get $oxEnd)))
                    (f32.store (i32.add (local.get $to) (i32.shl (local.get $ox) (i32.const 2))) (f32.load (local.get $from)))
                    (local.set $from (i32.add (local.get $from) (local.get $fromStep)))
                    (local.set $ox (i32.add (local.get $ox) (i32.const 1)))
                    (br $columns)))))
              (local.set $to (i32.add (local.get $to) (local.get $rowBytes)))
              (local.set $oy (i32.add (local.get $oy) (i32.const 1)))
              (br $rows)))
            (local.set $b (i32.add (local.get $b) (i32.const 1)))
            (br $images)))
          (local.set $c (i32.add (local.get $c) (i32.const 1)))
          (br $channelLoop)))
        (local.set $kx (i32.add (local.get $kx) (i32.const 1)))
        (br $taps)))
      (local.set $ky (i32.add (local.get $ky) (i32.const 1)))
      (br $tapRows))))

  ;; The same transposed patch matrix as transposedPatches, read straight from x in its own
  ;; layout [totalImages, h, w, channels] (channels a multiple of 4), so no transpose of x comes
  ;; first. Four channels at a time: for four output pixels of a row, one load per pixel takes its
  ;; four channels; a 4x4 transpose in registers turns them into four pixels of each channel, stored
  ;; to that channel's row. Where a row's valid columns are not a multiple of four, the last group
  ;; of four ends at the last valid column and overlaps the one before (it rewrites equal values).
  (func (export "channelsLastPatches")
    (param $x i32) (param $out i32) (param $firstImage i32) (param $batch i32) (param $channels i32)
    (param $inHeight i32) (param $inWidth i32) (param $outHeight i32) (param $outWidth i32)
    (param $kh i32) (param $kw i32) (param $strideY i32) (param $strideX i32) (param $top i32) (param $left i32)
    (local $ky i32) (local $kx i32) (local $c i32) (local $b i32) (local $oy i32) (local $iy i32)
    (local $oxFirst i32) (local $oxEnd i32) (local $to i32) (local $from i32) (local $rowBytes i32)
    (local $ox i32) (local $step i32) (local $plane i32) (local $pixelBytes i32) (local $rowStart i32)
    (local $v0 v128) (local $v1 v128) (local $v2 v128) (local $v3 v128) (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local.set $rowBytes (i32.shl (local.get $outWidth) (i32.const 2)))
    (local.set $pixelBytes (i32.shl (local.get $channels) (i32.const 2)))
    (local.set $step (i32.mul (local.get $strideX) (local.get $pixelBytes)))
    ;; Bytes between the rows of consecutive channels: P floats.
    (local.set $plane (i32.shl (i32.mul (i32.mul (local.get $batch) (local.get $outHeight)) (local.get $outWidth)) (i32.const 2)))
    (local.set $ky (i32.const 0))
    (block $tapRowsDone (loop $tapRows
      (br_if $tapRowsDone (i32.ge_s (local.get $ky) (local.get $kh)))
      (local.set $kx (i32.const 0))
      (block $tapsDone (loop $taps
        (br_if $tapsDone (i32.ge_s (local.get $kx) (local.get $kw)))
        ;; The valid output columns, as in transposedPatches.
        (local.set $oxFirst (i32.sub (local.get $left) (local.get $kx)))
        (local.set $oxFirst
          (select (i32.div_s (i32.add (local.get $oxFirst) (i32.sub (local.get $strideX) (i32.const 1))) (local.get $strideX))
                  (i32.const 0)
                  (i32.gt_s (local.get $oxFirst) (i32.const 0))))
        (local.set $oxEnd (i32.add (i32.div_s (i32.add (i32.sub (local.get $inWidth) (i32.const 1)) (i32.sub (local.get $left) (local.get $kx))) (local.get $strideX)) (i32.const 1)))
        (if (i32.lt_s (i32.add (i32.sub (local.get $inWidth) (i32.const 1)) (i32.sub (local.get $left) (local.get $kx))) (i32.const 0))
          (then (local.set $oxEnd (i32.const 0))))
        (if (i32.gt_s (local.get $oxEnd) (local.get $outWidth)) (then (local.set $oxEnd (local.get $outWidth))))
        (if (i32.lt_s (local.get $oxEnd) (local.get $oxFirst)) (then (local.set $oxEnd (local.get $oxFirst))))
        (local.set $c (i32.const 0))
        (block $groupsDone (loop $groups
          (br_if $groupsDone (i32.ge_s (local.get $c) (local.get $channels)))
          ;; Row of channel c for this tap: ((ky * kw + kx) * channels + c) * P floats in.
          (local.set $to (i32.add (local.get $out) (i32.mul
            (i32.add (i32.mul (i32.add (i32.mul (local.get $ky) (local.get $kw)) (local.get $kx)) (local.get $channels)) (local.get $c))
            (local.get $plane))))
          (local.set $b (i32.const 0))
          (block $imagesDone (loop $images
            (br_if $imagesDone (i32.ge_s (local.get $b) (local.get $batch)))
            (local.set $oy (i32.const 0))
            (block $rowsDone (loop $rows
              (br_if $rowsDone (i32.ge_s (local.get $oy) (local.get $outHeight)))
              (local.set $iy (i32.add (i32.sub (i32.mul (local.get $oy) (local.get $strideY)) (local.get $top)) (local.get $ky)))
              (if (i32.or (i32.or (i32.lt_s (local.get $iy) (i32.const 0)) (i32.ge_s (local.get $iy) (local.get $inHeight)))
                          (i32.ge_s (local.get $oxFirst) (local.get $oxEnd)))
                (then
                  (call $zeroFloats (local.get $to) (local.get $outWidth))
                  (call $zeroFloats (i32.add (local.get $to) (local.get $plane)) (local.get $outWidth))
                  (call $zeroFloats (i32.add (local.get $to) (i32.shl (local.get $plane) (i32.const 1))) (local.get $outWidth))
                  (call $zeroFloats (i32.add (local.get $to) (i32.mul (local.get $plane) (i32.const 3))) (local.get $outWidth)))
                (else
                  ;; Padding columns: [0, oxFirst) and [oxEnd, outWidth) of the four rows.
                  (local.set $ox (i32.const 0))
                  (block $leftDone (loop $leftPad
                    (br_if $leftDone (i32.ge_s (local.get $ox) (local.get $oxFirst)))
                    (call $zeroColumn (i32.add (local.get $to) (i32.shl (local.get $ox) (i32.const 2))) (local.get $plane))
                    (local.set $ox (i32.add (local.get $ox) (i32.const 1)))
                    (br $leftPad)))
                  (local.set $ox (local.get $oxEnd))
                  (block $rightDone (loop $rightPad
                    (br_if $rightDone (i32.ge_s (local.get $ox) (local.get $outWidth)))
                    (call $zeroColumn (i32.add (local.get $to) (i32.shl (local.get $ox) (i32.const 2))) (local.get $plane))
                    (local.set $ox (i32.add (local.get $ox) (i32.const 1)))
                    (br $rightPad)))
                  ;; Byte offset of x[firstImage + b, iy, oxFirst * strideX - left + kx, c].
                  (local.set $rowStart (i32.add (local.get $x) (i32.add
                    (i32.mul
                      (i32.add (i32.mul (i32.add (i32.mul (i32.add (local.get $firstImage) (local.get $b)) (local.get $inHeight)) (local.get $iy)) (local.get $inWidth))
                               (i32.add (i32.sub (i32.mul (local.get $oxFirst) (local.get $strideX)) (local.get $left)) (local.get $kx)))
                      (local.get $pixelBytes))
                    (i32.shl (local.get $c) (i32.const 2)))))
                  (if (i32.lt_s (i32.sub (local.get $oxEnd) (local.get $oxFirst)) (i32.const 4))
                    (then
                      ;; Fewer than four valid columns: one pixel (four channels) at a time.
                      (local.set $from (local.get $rowStart))
                      (local.set $ox (local.get $oxFirst))
                      (block $singlesDone (loop $singles
                        (br_if $singlesDone (i32.ge_s (local.get $ox) (local.get $oxEnd)))
                        (call $storeChannels (i32.add (local.get $to) (i32.shl (local.get $ox) (i32.const 2))) (local.get $plane) (v128.load (local.get $from)))
                        (local.set $from (i32.add (local.get $from) (local.get $step)))
                        (local.set $ox (i32.add (local.get $ox) (i32.const 1)))
                        (br $singles))))
                    (else
                      (local.set $ox (local.get $oxFirst))
                      (block $quadsDone (loop $quads
                        (br_if $quadsDone (i32.ge_s (local.get $ox) (local.get $oxEnd)))
                        ;; The last group of four ends at oxEnd.
                        (if (i32.gt_s (i32.add (local.get $ox) (i32.const 4)) (local.get $oxEnd))
                          (then (local.set $ox (i32.sub (local.get $oxEnd) (i32.const 4)))))
                        (local.set $from (i32.add (local.get $rowStart) (i32.mul (i32.sub (local.get $ox) (local.get $oxFirst)) (local.get $step))))
                        (local.set $v0 (v128.load (local.get $from)))
                        (local.set $v1 (v128.load (i32.add (local.get $from) (local.get $step))))
                        (local.set $v2 (v128.load (i32.add (local.get $from) (i32.shl (local.get $step) (i32.const 1)))))
                        (local.set $v3 (v128.load (i32.add (local.get $from) (i32.mul (local.get $step) (i32.const 3)))))
                        ;; 4x4 transpose: v_p holds channels 0-3 of pixel p; row j gets channel j of pixels 0-3.
                        (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $v0) (local.get $v1)))
                        (local.set $t1 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $v0) (local.get $v1)))
                        (local.set $t2 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $v2) (local.get $v3)))
                        (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $v2) (local.get $v3)))
                        (local.set $from (i32.add (local.get $to) (i32.shl (local.get $ox) (i32.const 2))))
                        (v128.store (local.get $from)
                          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t2)))
                        (v128.store (i32.add (local.get $from) (local.get $plane))
                          (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t2)))
                        (v128.store (i32.add (local.get $from) (i32.shl (local.get $plane) (i32.const 1)))
                          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t1) (local.get $t3)))
                        (v128.store (i32.add (local.get $from) (i32.mul (local.get $plane) (i32.const 3)))
                          (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t1) (local.get $t3)))
                        (local.set $ox (i32.add (local.get $ox) (i32.const 4)))
                        (br $quads)))))))
              (local.set $to (i32.add (local.get $to) (local.get $rowBytes)))
              (local.set $oy (i32.add (local.get $oy) (i32.const 1)))
              (br $rows)))
            (local.set $b (i32.add (local.get $b) (i32.const 1)))
            (br $images)))
          (local.set $c (i32.add (local.get $c) (i32.const 4)))
          (br $groups)))
        (local.set $kx (i32.add (local.get $kx) (i32.const 1)))
        (br $taps)))
      (local.set $ky (i32.add (local.get $ky) (i32.const 1)))
      (br $tapRows))))

  ;; A convolution's filter gradient without a patch matrix (an implicit matrix product):
  ;;   dW[ky, kx, c, o] += x[b, oy * strideY - top + ky, ox * strideX - left + kx, c] * dy[b, oy, ox, o]
  ;; over images b = 0 .. batch - 1 and every output pixel whose input pixel lies inside the image.
  ;; x is [batch, inHeight, inWidth, channels] and dy [batch, outHeight, outWidth, outChannels], both
  ;; as they are; channels must be a multiple of 4 and outChannels of 8; dW must hold zeros (or what
  ;; is to be added to). imagesPerPass images at a time, so that their x and dy stay in a near cache
  ;; while every tap and channel block passes over them (the caller picks enough images for a pass
  ;; of a few hundred pixels), over output rows oyFirst .. oyEnd - 1 of each (all of them, or a band
  ;; of one large image per call). A block is 4 input channels by 8 output channels, held in 8
  ;; registers across the pass's pixels: one load of x gives the 4 channels of a pixel, each
  ;; broadcast to a vector and multiplied by 8 values of dy. Each dW value is summed in a fixed
  ;; order: pass by pass (bands of rows in order), image by image, pixels in row order.
  (func (export "directFilterGradient")
    (param $x i32) (param $dy i32) (param $dw i32) (param $batch i32) (param $imagesPerPass i32) (param $outChannels i32) (param $channels i32)
    (param $inHeight i32) (param $inWidth i32) (param $outHeight i32) (param $outWidth i32)
    (param $kh i32) (param $kw i32) (param $strideY i32) (param $strideX i32) (param $top i32) (param $left i32)
    (param $oyFirst i32) (param $oyEnd i32)
    (local $b i32) (local $first i32) (local $last i32) (local $ky i32) (local $kx i32) (local $c i32) (local $o i32) (local $oy i32) (local $iy i32) (local $ox i32)
    (local $oxFirst i32) (local $oxEnd i32) (local $xImage i32) (local $dyImage i32) (local $xp i32) (local $dp i32) (local $w i32)
    (local $pixelBytes i32) (local $xStep i32) (local $dyPixelBytes i32) (local $wRowBytes i32)
    (local $a v128) (local $s v128) (local $b0 v128) (local $b1 v128)
    (local $acc00 v128) (local $acc01 v128) (local $acc10 v128) (local $acc11 v128)
    (local $acc20 v128) (local $acc21 v128) (local $acc30 v128) (local $acc31 v128)
    (local.set $pixelBytes (i32.shl (local.get $channels) (i32.const 2)))
    (local.set $xStep (i32.mul (local.get $strideX) (local.get $pixelBytes)))
    (local.set $dyPixelBytes (i32.shl (local.get $outChannels) (i32.const 2)))
    (local.set $wRowBytes (local.get $dyPixelBytes))
    (local.set $first (i32.const 0))
    (block $passesDone (loop $passes
      (br_if $passesDone (i32.ge_s (local.get $first) (local.get $batch)))
      (local.set $last (i32.add (local.get $first) (local.get $imagesPerPass)))
      (if (i32.gt_s (local.get $last) (local.get $batch)) (then (local.set $last (local.get $batch))))
      (local.set $ky (i32.const 0))
      (block $tapRowsDone (loop $tapRows
        (br_if $tapRowsDone (i32.ge_s (local.get $ky) (local.get $kh)))
        (local.set $kx (i32.const 0))
        (block $tapsDone (loop $taps
          (br_if $tapsDone (i32.ge_s (local.get $kx) (local.get $kw)))
          ;; The valid output columns, as in transposedPatches.
          (local.set $oxFirst (i32.sub (local.get $left) (local.get $kx)))
          (local.set $oxFirst
            (select (i32.div_s (i32.add (local.get $oxFirst) (i32.sub (local.get $strideX) (i32.const 1))) (local.get $strideX))
                    (i32.const 0)
                    (i32.gt_s (local.get $oxFirst) (i32.const 0))))
          (local.set $oxEnd (i32.add (i32.div_s (i32.add (i32.sub (local.get $inWidth) (i32.const 1)) (i32.sub (local.get $left) (local.get $kx))) (local.get $strideX)) (i32.const 1)))
          (if (i32.lt_s (i32.add (i32.sub (local.get $inWidth) (i32.const 1)) (i32.sub (local.get $left) (local.get $kx))) (i32.const 0))
            (then (local.set $oxEnd (i32.const 0))))
          (if (i32.gt_s (local.get $oxEnd) (local.get $outWidth)) (then (local.set $oxEnd (local.get $outWidth))))
          (if (i32.lt_s (local.get $oxEnd) (local.get $oxFirst)) (then (local.set $oxEnd (local.get $oxFirst))))
          (local.set $c (i32.const 0))
          (block $groupsDone (loop $groups
            (br_if $groupsDone (i32.ge_s (local.get $c) (local.get $channels)))
            (local.set $o (i32.const 0))
            (block $blocksDone (loop $blocks
              (br_if $blocksDone (i32.ge_s (local.get $o) (local.get $outChannels)))
              ;; dW[ky, kx, c .. c + 3, o .. o + 7]: rows of outChannels values.
              (local.set $w (i32.add (local.get $dw) (i32.shl
                (i32.add (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $ky) (local.get $kw)) (local.get $kx)) (local.get $channels)) (local.get $c)) (local.get $outChannels))
                         (local.get $o))
                (i32.const 2))))
              (local.set $acc00 (v128.load (local.get $w)))
              (local.set $acc01 (v128.load offset=16 (local.get $w)))
              (local.set $acc10 (v128.load (i32.add (local.get $w) (local.get $wRowBytes))))
              (local.set $acc11 (v128.load offset=16 (i32.add (local.get $w) (local.get $wRowBytes))))
              (local.set $acc20 (v128.load (i32.add (local.get $w) (i32.shl (local.get $wRowBytes) (i32.const 1)))))
              (local.set $acc21 (v128.load offset=16 (i32.add (local.get $w) (i32.shl (local.get $wRowBytes) (i32.const 1)))))
              (local.set $acc30 (v128.load (i32.add (local.get $w) (i32.mul (local.get $wRowBytes) (i32.const 3)))))
              (local.set $acc31 (v128.load offset=16 (i32.add (local.get $w) (i32.mul (local.get $wRowBytes) (i32.const 3)))))
              (if (i32.lt_s (local.get $oxFirst) (local.get $oxEnd)) (then
                (local.set $b (local.get $first))
                (loop $images
                (local.set $xImage (i32.add (local.get $x) (i32.mul (i32.mul (i32.mul (local.get $b) (local.get $inHeight)) (local.get $inWidth)) (local.get $pixelBytes))))
                (local.set $dyImage (i32.add (local.get $dy) (i32.mul (i32.mul (i32.mul (local.get $b) (local.get $outHeight)) (local.get $outWidth)) (local.get $dyPixelBytes))))
                (local.set $oy (local.get $oyFirst))
                (block $rowsDone (loop $rows
                  (br_if $rowsDone (i32.ge_s (local.get $oy) (local.get $oyEnd)))
                  (local.set $iy (i32.add (i32.sub (i32.mul (local.get $oy) (local.get $strideY)) (local.get $top)) (local.get $ky)))
                  (if (i32.and (i32.ge_s (local.get $iy) (i32.const 0)) (i32.lt_s (local.get $iy) (local.get $inHeight))) (then
                    ;; x[b, iy, oxFirst * strideX - left + kx, c] and dy[b, oy, oxFirst, o].
                    (local.set $xp (i32.add (local.get $xImage) (i32.add
                      (i32.mul (i32.add (i32.mul (local.get $iy) (local.get $inWidth))
                                        (i32.add (i32.sub (i32.mul (local.get $oxFirst) (local.get $strideX)) (local.get $left)) (local.get $kx)))
                               (local.get $pixelBytes))
                      (i32.shl (local.get $c) (i32.const 2)))))
                    (local.set $dp (i32.add (local.get $dyImage) (i32.add
                      (i32.mul (i32.add (i32.mul (local.get $oy) (local.get $outWidth)) (local.get $oxFirst)) (local.get $dyPixelBytes))
                      (i32.shl (local.get $o) (i32.const 2)))))
                    (local.set $ox (local.get $oxFirst))
                    (loop $pixels
                      (local.set $a (v128.load (local.get $xp)))
                      (local.set $b0 (v128.load (local.get $dp)))
                      (local.set $b1 (v128.load offset=16 (local.get $dp)))
                      (local.set $s (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.get $a) (local.get $a)))
                      (local.set $acc00 (f32x4.add (local.get $acc00) (f32x4.mul (local.get $s) (local.get $b0))))
                      (local.set $acc01 (f32x4.add (local.get $acc01) (f32x4.mul (local.get $s) (local.get $b1))))
                      (local.set $s (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.get $a) (local.get $a)))
                      (local.set $acc10 (f32x4.add (local.get $acc10) (f32x4.mul (local.get $s) (local.get $b0))))
                      (local.set $acc11 (f32x4.add (local.get $acc11) (f32x4.mul (local.get $s) (local.get $b1))))
                      (local.set $s (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.get $a) (local.get $a)))
                      (local.set $acc20 (f32x4.add (local.get $acc20) (f32x4.mul (local.get $s) (local.get $b0))))
                      (local.set $acc21 (f32x4.add (local.get $acc21) (f32x4.mul (local.get $s) (local.get $b1))))
                      (local.set $s (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $a) (local.get $a)))
                      (local.set $acc30 (f32x4.add (local.get $acc30) (f32x4.mul (local.get $s) (local.get $b0))))
                      (local.set $acc31 (f32x4.add (local.get $acc31) (f32x4.mul (local.get $s) (local.get $b1))))
                      (local.set $xp (i32.add (local.get $xp) (local.get $xStep)))
                      (local.set $dp (i32.add (local.get $dp) (local.get $dyPixelBytes)))
                      (local.set $ox (i32.add (local.get $ox) (i32.const 1)))
                      (br_if $pixels (i32.lt_s (local.get $ox) (local.get $oxEnd))))))
                  (local.set $oy (i32.add (local.get $oy) (i32.const 1)))
                  (br $rows)))
                (local.set $b (i32.add (local.get $b) (i32.const 1)))
                (br_if $images (i32.lt_s (local.get $b) (local.get $last))))))
              (v128.store (local.get $w) (local.get $acc00))
              (v128.store offset=16 (local.get $w) (local.get $acc01))
              (v128.store (i32.add (local.get $w) (local.get $wRowBytes)) (local.get $acc10))
              (v128.store offset=16 (i32.add (local.get $w) (local.get $wRowBytes)) (local.get $acc11))
              (v128.store (i32.add (local.get $w) (i32.shl (local.get $wRowBytes) (i32.const 1))) (local.get $acc20))
              (v128.store offset=16 (i32.add (local.get $w) (i32.shl (local.get $wRowBytes) (i32.const 1))) (local.get $acc21))
              (v128.store (i32.add (local.get $w) (i32.mul (local.get $wRowBytes) (i32.const 3))) (local.get $acc30))
              (v128.store offset=16 (i32.add (local.get $w) (i32.mul (local.get $wRowBytes) (i32.const 3))) (local.get $acc31))
              (local.set $o (i32.add (local.get $o) (i32.const 8)))
              (br $blocks)))
            (local.set $c (i32.add (local.get $c) (i32.const 4)))
            (br $groups)))
          (local.set $kx (i32.add (local.get $kx) (i32.const 1)))
          (br $taps)))
        (local.set $ky (i32.add (local.get $ky) (i32.const 1)))
        (br $tapRows)))
      (local.set $first (local.get $last))
      (br $passes))))

  ;; A correlation without a column matrix, the core of a convolution (forward) and of a stride-1
  ;; convolution's input gradient:
  ;;   out[b, y, x, c] = bias[c] + sum over ky, kx, m of source[b, y * strideY + ty, x * strideX + tx, m] * w[ky, kx, m, c]
  ;; with (ty, tx) = (ky, kx), or (kh - 1 - ky, kw - 1 - kx) where flipTaps is non-zero, and bias[c]
  ;; 0 where the bias pointer is 0. source is
  ;; [batch, paddedRows, paddedWidth, sumChannels] with the padding already around it (the caller
  ;; pads); w is [kh, kw, sumChannels, channels]; out is [batch, outHeight, outWidth, channels],
  ;; written, not added to. channels a multiple of 8, and at least 4 output pixels in all. The
  ;; forward convolution passes x padded and its filter as it is; the input gradient passes dy
  ;; padded by the forward padding's complement, the filter with its channel axes swapped, stride 1
  ;; and flipped taps. Four pixels (consecutive in out, across rows and images) by 8 channels at a
  ;; time, in 8 registers: per tap and summed channel, 8 filter values times each pixel's source
  ;; value (one broadcasting load; loading 4 channels and shuffling kept more registers live and
  ;; spilled). The last group of four ends at the last pixel and overlaps the one before (it
  ;; rewrites equal values). Pixels go 64 at a time through every channel block, so their source
  ;; stays in a near cache. Each value is summed in a fixed order (ky, kx, m).
  (func (export "directCorrelation")
    (param $source i32) (param $w i32) (param $out i32) (param $batch i32) (param $sumChannels i32) (param $channels i32)
    (param $outHeight i32) (param $outWidth i32) (param $kh i32) (param $kw i32)
    (param $paddedRows i32) (param $paddedWidth i32) (param $strideY i32) (param $strideX i32) (param $flipTaps i32) (param $bias i32)
    (local $total i32) (local $imagePixels i32) (local $chunk i32) (local $chunkEnd i32) (local $start i32) (local $c i32)
    (local $ky i32) (local $kx i32) (local $o i32)
    (local $sourcePixelBytes i32) (local $wRowBytes i32) (local $ty i32) (local $tx i32)
    (local $base0 i32) (local $rel1 i32) (local $rel2 i32) (local $rel3 i32)
    (local $dyp i32) (local $wp i32) (local $to i32)
    (local $w0 v128) (local $w1 v128) (local $s v128)
    (local $acc00 v128) (local $acc01 v128) (local $acc10 v128) (local $acc11 v128)
    (local $acc20 v128) (local $acc21 v128) (local $acc30 v128) (local $acc31 v128)
    (local.set $sourcePixelBytes (i32.shl (local.get $sumChannels) (i32.const 2)))
    (local.set $wRowBytes (i32.shl (local.get $channels) (i32.const 2)))
    (local.set $imagePixels (i32.mul (local.get $outHeight) (local.get $outWidth)))
    (local.set $total (i32.mul (local.get $batch) (local.get $imagePixels)))
    (local.set $chunk (i32.const 0))
    (block $chunksDone (loop $chunks
      (br_if $chunksDone (i32.ge_s (local.get $chunk) (local.get $total)))
      (local.set $chunkEnd (i32.add (local.get $chunk) (i32.const 64)))
      (if (i32.gt_s (local.get $chunkEnd) (local.get $total)) (then (local.set $chunkEnd (local.get $total))))
      (local.set $c (i32.const 0))
      (block $blocksDone (loop $blocks
        (br_if $blocksDone (i32.ge_s (local.get $c) (local.get $channels)))
        (local.set $start (local.get $chunk))
        (block $groupsDone (loop $groups
          (br_if $groupsDone (i32.ge_s (local.get $start) (local.get $chunkEnd)))
          (if (i32.gt_s (i32.add (local.get $start) (i32.const 4)) (local.get $total))
            (then (local.set $start (i32.sub (local.get $total) (i32.const 4)))))
          ;; Each pixel's place in source (the tap's offset is added below); pixels 1-3 relative to 0.
          (local.set $base0 (call $paddedPixel (local.get $start) (local.get $imagePixels) (local.get $outWidth) (local.get $paddedRows) (local.get $paddedWidth) (local.get $strideY) (local.get $strideX)))
          (local.set $rel1 (i32.mul (local.get $sourcePixelBytes) (i32.sub (call $paddedPixel (i32.add (local.get $start) (i32.const 1)) (local.get $imagePixels) (local.get $outWidth) (local.get $paddedRows) (local.get $paddedWidth) (local.get $strideY) (local.get $strideX)) (local.get $base0))))
          (local.set $rel2 (i32.mul (local.get $sourcePixelBytes) (i32.sub (call $paddedPixel (i32.add (local.get $start) (i32.const 2)) (local.get $imagePixels) (local.get $outWidth) (local.get $paddedRows) (local.get $paddedWidth) (local.get $strideY) (local.get $strideX)) (local.get $base0))))
          (local.set $rel3 (i32.mul (local.get $sourcePixelBytes) (i32.sub (call $paddedPixel (i32.add (local.get $start) (i32.const 3)) (local.get $imagePixels) (local.get $outWidth) (local.get $paddedRows) (local.get $paddedWidth) (local.get $strideY) (local.get $strideX)) (local.get $base0))))
          (local.set $base0 (i32.add (local.get $source) (i32.mul (local.get $base0) (local.get $sourcePixelBytes))))
          ;; Each sum starts at its channel's bias (bias[c .. c + 7]; pointer 0: none).
          (local.set $w0 (v128.const i32x4 0 0 0 0)) (local.set $w1 (v128.const i32x4 0 0 0 0))
          (if (local.get $bias)
            (then
              (local.set $w0 (v128.load (i32.add (local.get $bias) (i32.shl (local.get $c) (i32.const 2)))))
              (local.set $w1 (v128.load offset=16 (i32.add (local.get $bias) (i32.shl (local.get $c) (i32.const 2)))))))
          (local.set $acc00 (local.get $w0)) (local.set $acc01 (local.get $w1))
          (local.set $acc10 (local.get $w0)) (local.set $acc11 (local.get $w1))
          (local.set $acc20 (local.get $w0)) (local.set $acc21 (local.get $w1))
          (local.set $acc30 (local.get $w0)) (local.set $acc31 (local.get $w1))
          (local.set $ky (i32.const 0))
          (block $tapRowsDone (loop $tapRows
            (br_if $tapRowsDone (i32.ge_s (local.get $ky) (local.get $kh)))
            (local.set $kx (i32.const 0))
            (block $tapsDone (loop $taps
              (br_if $tapsDone (i32.ge_s (local.get $kx) (local.get $kw)))
              ;; Tap (ky, kx) reads source ty rows and tx columns further on.
              (local.set $ty (select (i32.sub (i32.sub (local.get $kh) (i32.const 1)) (local.get $ky)) (local.get $ky) (local.get $flipTaps)))
              (local.set $tx (select (i32.sub (i32.sub (local.get $kw) (i32.const 1)) (local.get $kx)) (local.get $kx) (local.get $flipTaps)))
              (local.set $dyp (i32.add (local.get $base0) (i32.mul
                (i32.add (i32.mul (local.get $ty) (local.get $paddedWidth)) (local.get $tx))
                (local.get $sourcePixelBytes))))
              (local.set $wp (i32.add (local.get $w) (i32.shl
                (i32.add (i32.mul (i32.mul (i32.add (i32.mul (local.get $ky) (local.get $kw)) (local.get $kx)) (local.get $sumChannels)) (local.get $channels))
                         (local.get $c))
                (i32.const 2))))
              (local.set $o (i32.const 0))
              (loop $outputs
                ;; Summed channel o: 8 filter values, and the source value of each of the 4 pixels broadcast.
                (local.set $w0 (v128.load (local.get $wp)))
                (local.set $w1 (v128.load offset=16 (local.get $wp)))
                (local.set $s (v128.load32_splat (local.get $dyp)))
                (local.set $acc00 (f32x4.add (local.get $acc00) (f32x4.mul (local.get $s) (local.get $w0))))
                (local.set $acc01 (f32x4.add (local.get $acc01) (f32x4.mul (local.get $s) (local.get $w1))))
                (local.set $s (v128.load32_splat (i32.add (local.get $dyp) (local.get $rel1))))
                (local.set $acc10 (f32x4.add (local.get $acc10) (f32x4.mul (local.get $s) (local.get $w0))))
                (local.set $acc11 (f32x4.add (local.get $acc11) (f32x4.mul (local.get $s) (local.get $w1))))
                (local.set $s (v128.load32_splat (i32.add (local.get $dyp) (local.get $rel2))))
                (local.set $acc20 (f32x4.add (local.get $acc20) (f32x4.mul (local.get $s) (local.get $w0))))
                (local.set $acc21 (f32x4.add (local.get $acc21) (f32x4.mul (local.get $s) (local.get $w1))))
                (local.set $s (v128.load32_splat (i32.add (local.get $dyp) (local.get $rel3))))
                (local.set $acc30 (f32x4.add (local.get $acc30) (f32x4.mul (local.get $s) (local.get $w0))))
                (local.set $acc31 (f32x4.add (local.get $acc31) (f32x4.mul (local.get $s) (local.get $w1))))
                (local.set $wp (i32.add (local.get $wp) (local.get $wRowBytes)))
                (local.set $dyp (i32.add (local.get $dyp) (i32.const 4)))
                (local.set $o (i32.add (local.get $o) (i32.const 1)))
                (br_if $outputs (i32.lt_s (local.get $o) (local.get $sumChannels))))
              (local.set $kx (i32.add (local.get $kx) (i32.const 1)))
              (br $taps)))
            (local.set $ky (i32.add (local.get $ky) (i32.const 1)))
            (br $tapRows)))
          ;; out[start .. start + 3, c .. c + 7] (pixels in out order).
          (local.set $to (i32.add (local.get $out) (i32.shl (i32.add (i32.mul (local.get $start) (local.get $channels)) (local.get $c)) (i32.const 2))))
          (v128.store (local.get $to) (local.get $acc00))
          (v128.store offset=16 (local.get $to) (local.get $acc01))
          (local.set $to (i32.add (local.get $to) (local.get $wRowBytes)))
          (v128.store (local.get $to) (local.get $acc10))
          (v128.store offset=16 (local.get $to) (local.get $acc11))
          (local.set $to (i32.add (local.get $to) (local.get $wRowBytes)))
          (v128.store (local.get $to) (local.get $acc20))
          (v128.store offset=16 (local.get $to) (local.get $acc21))
          (local.set $to (i32.add (local.get $to) (local.get $wRowBytes)))
          (v128.store (local.get $to) (local.get $acc30))
          (v128.store offset=16 (local.get $to) (local.get $acc31))
          (local.set $start (i32.add (local.get $start) (i32.const 4)))
          (br $groups)))
        (local.set $c (i32.add (local.get $c) (i32.const 8)))
        (br $blocks)))
      (local.set $chunk (local.get $chunkEnd))
      (br $chunks))))

  ;; The place (in pixels) of output pixel idx = (b * outHeight + y) * outWidth + x in the padded
  ;; source, whose rows are paddedWidth pixels and images paddedRows rows:
  ;; (b * paddedRows + y * strideY) * paddedWidth + x * strideX.
  (func $paddedPixel (param $idx i32) (param $imagePixels i32) (param $outWidth i32) (param $paddedRows i32) (param $paddedWidth i32)
    (param $strideY i32) (param $strideX i32) (result i32)
    (local $b i32) (local $r i32) (local $y i32)
    (local.set $b (i32.div_u (local.get $idx) (local.get $imagePixels)))
    (local.set $r (i32.sub (local.get $idx) (i32.mul (local.get $b) (local.get $imagePixels))))
    (local.set $y (i32.div_u (local.get $r) (local.get $outWidth)))
    (i32.add
      (i32.mul (i32.add (i32.mul (local.get $b) (local.get $paddedRows)) (i32.mul (local.get $y) (local.get $strideY))) (local.get $paddedWidth))
      (i32.mul (i32.sub (local.get $r) (i32.mul (local.get $y) (local.get $outWidth))) (local.get $strideX))))

  ;; A zero at byte offset at in each of four rows plane bytes apart.
  (func $zeroColumn (param $at i32) (param $plane i32)
    (f32.store (local.get $at) (f32.const 0))
    (f32.store (i32.add (local.get $at) (local.get $plane)) (f32.const 0))
    (f32.store (i32.add (local.get $at) (i32.shl (local.get $plane) (i32.const 1))) (f32.const 0))
    (f32.store (i32.add (local.get $at) (i32.mul (local.get $plane) (i32.const 3))) (f32.const 0)))

  ;; Lane j of v at byte offset at of row j (rows plane bytes apart).
  (func $storeChannels (param $at i32) (param $plane i32) (param $v v128)
    (f32.store (local.get $at) (f32x4.extract_lane 0 (local.get $v)))
    (f32.store (i32.add (local.get $at) (local.get $plane)) (f32x4.extract_lane 1 (local.get $v)))
    (f32.store (i32.add (local.get $at) (i32.shl (local.get $plane) (i32.const 1))) (f32x4.extract_lane 2 (local.get $v)))
    (f32.store (i32.add (local.get $at) (i32.mul (local.get $plane) (i32.const 3))) (f32x4.extract_lane 3 (local.get $v))))

  ;; The scatter-add half of a convolution's input gradient (col2im): for every output pixel
  ;; p = (b, oy, ox) and filter tap (ky, kx) whose input pixel (iy, ix) = (oy * strideY - top + ky,
  ;; ox * strideX - left + kx) lies inside the image,
  ;;   dx[b, iy, ix, :] += columns[p, (ky * kw + kx) * channels : +channels].
  ;; columns is [batch * outHeight * outWidth, kh * kw * channels] (dy times the transposed filter);
  ;; dx must hold zeros (or what is to be added to). Taps are added in a fixed order.
  (func (export "columnsToImage")
    (param $columns i32) (param $dx i32) (param $batch i32) (param $channels i32)
    (param $inHeight i32) (param $inWidth i32) (param $outHeight i32) (param $outWidth i32)
    (param $kh i32) (param $kw i32) (param $strideY i32) (param $strideX i32) (param $top i32) (param $left i32)
    (local $b i32) (local $oy i32) (local $ox i32) (local $ky i32) (local $kx i32) (local $iy i32) (local $ix i32)
    (local $row i32) (local $from i32) (local $to i32) (local $end i32) (local $vectorEnd i32)
    (local $channelBytes i32) (local $rowBytes i32)
    (local.set $channelBytes (i32.shl (local.get $channels) (i32.const 2)))
    (local.set $rowBytes (i32.mul (i32.mul (local.get $kh) (local.get $kw)) (local.get $channelBytes)))
    (local.set $row (local.get $columns))
    (local.set $b (i32.const 0))
    (block $imagesDone (loop $images
      (br_if $imagesDone (i32.ge_s (local.get $b) (local.get $batch)))
      (local.set $oy (i32.const 0))
      (block $rowsDone (loop $rows
        (br_if $rowsDone (i32.ge_s (local.get $oy) (local.get $outHeight)))
        (local.set $ox (i32.const 0))
        (block $pixelsDone (loop $pixels
          (br_if $pixelsDone (i32.ge_s (local.get $ox) (local.get $outWidth)))
          (local.set $ky (i32.const 0))
          (block $tapRowsDone (loop $tapRows
            (br_if $tapRowsDone (i32.ge_s (local.get $ky) (local.get $kh)))
            (local.set $iy (i32.add (i32.sub (i32.mul (local.get $oy) (local.get $strideY)) (local.get $top)) (local.get $ky)))
            (if (i32.and (i32.ge_s (local.get $iy) (i32.const 0)) (i32.lt_s (local.get $iy) (local.get $inHeight)))
              (then
                (local.set $kx (i32.const 0))
                (block $tapsDone (loop $taps
                  (br_if $tapsDone (i32.ge_s (local.get $kx) (local.get $kw)))
                  (local.set $ix (i32.add (i32.sub (i32.mul (local.get $ox) (local.get $strideX)) (local.get $left)) (local.get $kx)))
                  (if (i32.and (i32.ge_s (local.get $ix) (i32.const 0)) (i32.lt_s (local.get $ix) (local.get $inWidth)))
                    (then
                      (local.set $from (i32.add (local.get $row)
                        (i32.mul (i32.add (i32.mul (local.get $ky) (local.get $kw)) (local.get $kx)) (local.get $channelBytes))))
                      (local.set $to (i32.add (local.get $dx) (i32.mul
                        (i32.add (i32.mul (i32.add (i32.mul (local.get $b) (local.get $inHeight)) (local.get $iy)) (local.get $inWidth)) (local.get $ix))
                        (local.get $channelBytes))))
                      (local.set $end (i32.add (local.get $to) (local.get $channelBytes)))
                      (local.set $vectorEnd (i32.add (local.get $to) (i32.and (local.get $channelBytes) (i32.const -16))))
                      (block $vectorsDone (loop $vectors
                        (br_if $vectorsDone (i32.ge_u (local.get $to) (local.get $vectorEnd)))
                        (v128.store (local.get $to) (f32x4.add (v128.load (local.get $to)) (v128.load (local.get $from))))
                        (local.set $to (i32.add (local.get $to) (i32.const 16)))
                        (local.set $from (i32.add (local.get $from) (i32.const 16)))
                        (br $vectors)))
                      (block $singlesDone (loop $singles
                        (br_if $singlesDone (i32.ge_u (local.get $to) (local.get $end)))
                        (f32.store (local.get $to) (f32.add (f32.load (local.get $to)) (f32.load (local.get $from))))
                        (local.set $to (i32.add (local.get $to) (i32.const 4)))
                        (local.set $from (i32.add (local.get $from) (i32.const 4)))
                        (br $singles)))))
                  (local.set $kx (i32.add (local.get $kx) (i32.const 1)))
                  (br $taps)))))
            (local.set $ky (i32.add (local.get $ky) (i32.const 1)))
            (br $tapRows)))
          (local.set $row (i32.add (local.get $row) (local.get $rowBytes)))
          (local.set $ox (i32.add (local.get $ox) (i32.const 1)))
          (br $pixels)))
        (local.set $oy (i32.add (local.get $oy) (i32.const 1)))
        (br $rows)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $images))))
)
