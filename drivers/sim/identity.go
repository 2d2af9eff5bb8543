package sim

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/idcard"
)

// RefDate is "today" for generated identities: ages, issue dates and
// validity periods are computed from it so that a seed always gives the same
// identity. Cards generated against it are valid on that date.
var RefDate = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// region is a real county-level division: its GB/T 2260 code, the start of
// an address in it, its city and the short name of its district (for the
// issuing authority, "广州市公安局天河分局").
type region struct {
	code, prefix, city, district string
	nation                       string // locally common nation code, "" for none
	share                        int    // its share of residents in percent
}

var regions = []region{
	{"110101", "北京市东城区", "北京市", "东城", "", 0},
	{"110105", "北京市朝阳区", "北京市", "朝阳", "", 0},
	{"110108", "北京市海淀区", "北京市", "海淀", "", 0},
	{"120101", "天津市和平区", "天津市", "和平", "", 0},
	{"310101", "上海市黄浦区", "上海市", "黄浦", "", 0},
	{"310104", "上海市徐汇区", "上海市", "徐汇", "", 0},
	{"310115", "上海市浦东新区", "上海市", "浦东", "", 0},
	{"500103", "重庆市渝中区", "重庆市", "渝中", "", 0},
	{"440104", "广东省广州市越秀区", "广州市", "越秀", "", 0},
	{"440106", "广东省广州市天河区", "广州市", "天河", "", 0},
	{"440304", "广东省深圳市福田区", "深圳市", "福田", "", 0},
	{"440305", "广东省深圳市南山区", "深圳市", "南山", "", 0},
	{"330102", "浙江省杭州市上城区", "杭州市", "上城", "", 0},
	{"330106", "浙江省杭州市西湖区", "杭州市", "西湖", "", 0},
	{"320102", "江苏省南京市玄武区", "南京市", "玄武", "", 0},
	{"320506", "江苏省苏州市吴中区", "苏州市", "吴中", "", 0},
	{"510104", "四川省成都市锦江区", "成都市", "锦江", "", 0},
	{"510107", "四川省成都市武侯区", "成都市", "武侯", "", 0},
	{"420102", "湖北省武汉市江岸区", "武汉市", "江岸", "", 0},
	{"420106", "湖北省武汉市武昌区", "武汉市", "武昌", "", 0},
	{"610113", "陕西省西安市雁塔区", "西安市", "雁塔", "", 0},
	{"370102", "山东省济南市历下区", "济南市", "历下", "", 0},
	{"370202", "山东省青岛市市南区", "青岛市", "市南", "", 0},
	{"430102", "湖南省长沙市芙蓉区", "长沙市", "芙蓉", "", 0},
	{"410105", "河南省郑州市金水区", "郑州市", "金水", "", 0},
	{"350203", "福建省厦门市思明区", "厦门市", "思明", "", 0},
	{"210102", "辽宁省沈阳市和平区", "沈阳市", "和平", "", 0},
	{"530102", "云南省昆明市五华区", "昆明市", "五华", "", 0},
	{"450103", "广西壮族自治区南宁市青秀区", "南宁市", "青秀", "08", 30},
	{"650102", "新疆维吾尔自治区乌鲁木齐市天山区", "乌鲁木齐市", "天山", "05", 45},
	{"540102", "西藏自治区拉萨市城关区", "拉萨市", "城关", "04", 80},
	{"150102", "内蒙古自治区呼和浩特市新城区", "呼和浩特市", "新城", "02", 20},
}

var streets = []string{
	"人民路", "解放路", "中山路", "建设路", "和平路", "新华路", "长江路", "文化路",
	"朝阳路", "幸福路", "团结路", "胜利路", "青年路", "光明路", "东风路", "建国路",
	"学府路", "黄河路", "迎宾路", "南京路", "花园街", "府前街", "北京路", "滨江大道",
}

var surnames = []string{
	"王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱",
	"胡", "郭", "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯",
	"邓", "曹", "彭", "曾", "肖", "田", "董", "袁", "潘", "于", "蒋", "蔡", "余", "杜",
	"叶", "程", "苏", "魏", "吕", "丁", "任", "沈", "姚", "卢", "姜", "崔", "钟", "谭",
	"陆", "汪", "范", "金", "石", "廖", "贾", "夏", "韦", "付", "方", "白", "邹", "孟",
	"熊", "秦", "邱", "江", "尹", "薛", "闫", "段", "雷", "侯", "龙", "史", "陶", "黎",
	"贺", "顾", "毛", "郝", "龚", "邵", "万", "钱", "严", "覃", "武", "戴", "莫", "孔",
	"欧阳", "司马", "诸葛", "上官",
}

var givenMale = []string{
	"伟", "强", "磊", "军", "勇", "杰", "涛", "明", "超", "刚", "平", "辉", "鹏", "华",
	"飞", "鑫", "波", "斌", "宇", "浩", "凯", "健", "俊", "帆", "旭", "宁", "龙", "林",
	"阳", "建", "国", "志", "文", "博", "晨", "轩", "皓", "然", "泽", "睿", "嘉", "成",
}

var givenFemale = []string{
	"芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "秀", "英", "玲", "婷", "雪", "慧",
	"莉", "萍", "红", "燕", "琳", "欣", "怡", "佳", "梦", "雨", "晴", "悦", "诗", "涵",
	"思", "颖", "可", "馨", "彤", "琪", "瑶", "蕾", "洁", "倩", "月", "兰", "凤", "玉",
}

// country is an ISO 3166 country: alpha-3 and numeric codes.
type country struct{ alpha3, numeric string }

var countries = []country{
	{"USA", "840"}, {"CAN", "124"}, {"GBR", "826"}, {"DEU", "276"}, {"FRA", "250"},
	{"ITA", "380"}, {"RUS", "643"}, {"AUS", "036"}, {"BRA", "076"}, {"ESP", "724"},
	{"NLD", "528"}, {"SWE", "752"},
}

// latin is a Latin-script name and its usual Chinese transliteration.
type latin struct{ en, zh string }

var (
	foreignMale = []latin{
		{"JOHN", "约翰"}, {"MICHAEL", "迈克尔"}, {"DAVID", "大卫"}, {"JAMES", "詹姆斯"},
		{"ROBERT", "罗伯特"}, {"WILLIAM", "威廉"}, {"THOMAS", "托马斯"}, {"DANIEL", "丹尼尔"},
		{"PETER", "彼得"}, {"PAUL", "保罗"}, {"MARK", "马克"}, {"LUCAS", "卢卡斯"},
	}
	foreignFemale = []latin{
		{"MARIA", "玛丽亚"}, {"ANNA", "安娜"}, {"EMMA", "艾玛"}, {"SOPHIE", "索菲"},
		{"LAURA", "劳拉"}, {"SARAH", "莎拉"}, {"ELENA", "埃琳娜"}, {"JULIA", "朱莉娅"},
		{"LUCY", "露西"}, {"ALICE", "爱丽丝"}, {"CLARA", "克拉拉"}, {"NINA", "尼娜"},
	}
	foreignSurnames = []latin{
		{"SMITH", "史密斯"}, {"JOHNSON", "约翰逊"}, {"BROWN", "布朗"}, {"MILLER", "米勒"},
		{"MUELLER", "穆勒"}, {"SCHMIDT", "施密特"}, {"MARTIN", "马丁"}, {"BERNARD", "贝尔纳"},
		{"ROSSI", "罗西"}, {"WILSON", "威尔逊"}, {"TAYLOR", "泰勒"}, {"GARCIA", "加西亚"},
		{"SILVA", "席尔瓦"}, {"ANDERSON", "安德森"}, {"CLARK", "克拉克"}, {"MOORE", "摩尔"},
	}
)

func pick[T any](rng *rand.Rand, s []T) T { return s[rng.IntN(len(s))] }

func ymd(t time.Time) string { return t.Format("20060102") }

// GenerateIdentity returns a realistic synthetic identity of card type t
// (ga467.Resident, HKMacaoTaiwan, ForeignPerm or ForeignPerm2023), drawn
// from rng: common Chinese names, real region codes and names, ID numbers
// with the region prefix, the birth date, the sex parity and a valid ISO
// 7064 check digit, issuing authorities, and validity periods by age, as of
// RefDate. The same rng state gives the same identity. It panics on an
// unknown type.
func GenerateIdentity(rng *rand.Rand, t ga467.CardType) ga467.Identity {
	switch t {
	case ga467.Resident:
		return genResident(rng)
	case ga467.HKMacaoTaiwan:
		return genPermit(rng)
	case ga467.ForeignPerm:
		return genForeign2017(rng)
	case ga467.ForeignPerm2023:
		return genForeign2023(rng)
	}
	panic(fmt.Sprintf("sim: unknown card type %v", t))
}

// genSex returns "1" (male) or "2" (female).
func genSex(rng *rand.Rand) string {
	if rng.IntN(2) == 0 {
		return "1"
	}
	return "2"
}

func chineseName(rng *rand.Rand, sex string) string {
	given := givenMale
	if sex == "2" {
		given = givenFemale
	}
	n := pick(rng, surnames) + pick(rng, given)
	if rng.IntN(10) < 7 {
		n += pick(rng, given)
	}
	return n
}

// genBirth draws a birth date of someone between minAge and maxAge years
// old on RefDate.
func genBirth(rng *rand.Rand, minAge, maxAge int) time.Time {
	age := minAge + rng.IntN(maxAge-minAge+1)
	return RefDate.AddDate(-age-1, 0, 1+rng.IntN(365))
}

// genIssue draws an issue date in the 5 years before RefDate, not before
// the first birthday.
func genIssue(rng *rand.Rand, birth time.Time) time.Time {
	earliest := birth.AddDate(1, 0, 0)
	span := int(RefDate.Sub(earliest).Hours()/24) - 1
	span = min(span, 5*365)
	if span <= 0 {
		return earliest
	}
	return RefDate.AddDate(0, 0, -1-rng.IntN(span))
}

func ageOn(birth, day time.Time) int {
	age := day.Year() - birth.Year()
	if day.YearDay() < birth.YearDay() {
		age--
	}
	return age
}

// residentValidity is the validity period of a resident ID card by the
// holder's age at issue (Resident Identity Card Law, art. 5): under 16 five
// years, 16–25 ten years, 26–45 twenty years, over 45 long-term.
func residentValidity(issue, birth time.Time) string {
	switch age := ageOn(birth, issue); {
	case age < 16:
		return ymd(issue.AddDate(5, 0, 0))
	case age <= 25:
		return ymd(issue.AddDate(10, 0, 0))
	case age <= 45:
		return ymd(issue.AddDate(20, 0, 0))
	}
	return ga467.LongTerm
}

// idNumber builds an 18-character number: the 6-digit prefix, the birth
// date, a 3-digit sequence number whose last digit is odd for men and even
// for women (GB 11643), and the check digit.
func idNumber(rng *rand.Rand, prefix string, birth time.Time, sex string) string {
	seq := rng.IntN(100)*10 + 2*rng.IntN(5)
	if sex == "1" {
		seq++
	}
	first17 := fmt.Sprintf("%s%s%03d", prefix, ymd(birth), seq)
	return first17 + string(checkDigit(first17))
}

func checkDigit(first17 string) byte {
	c, err := ga467.CheckDigit(first17)
	if err != nil {
		panic(fmt.Sprintf("sim: check digit: %v", err)) // only digits are passed
	}
	return c
}

func nationFor(rng *rand.Rand, r region) string {
	if r.nation != "" && rng.IntN(100) < r.share {
		return r.nation
	}
	if rng.IntN(100) < 91 {
		return "01"
	}
	return fmt.Sprintf("%02d", 2+rng.IntN(55))
}

// streetAddress is a street, a number and often a building and flat; it
// keeps the address within the 35 characters of the text block.
func streetAddress(rng *rand.Rand, prefix string) string {
	var b strings.Builder
	b.WriteString(prefix)
	b.WriteString(pick(rng, streets))
	fmt.Fprintf(&b, "%d号", 1+rng.IntN(399))
	if rng.IntN(4) != 0 {
		flat := fmt.Sprintf("%d栋%d单元%d%02d室", 1+rng.IntN(30), 1+rng.IntN(6), 1+rng.IntN(32), 1+rng.IntN(6))
		if len([]rune(b.String()))+len([]rune(flat)) <= 35 {
			b.WriteString(flat)
		}
	}
	return b.String()
}

func genResident(rng *rand.Rand) ga467.Identity {
	r := pick(rng, regions)
	sex := genSex(rng)
	var birth time.Time
	if rng.IntN(10) == 0 {
		birth = genBirth(rng, 3, 15)
	} else {
		birth = genBirth(rng, 16, 85)
	}
	issue := genIssue(rng, birth)
	return ga467.Identity{
		Type:      ga467.Resident,
		Name:      chineseName(rng, sex),
		Sex:       sex,
		Nation:    nationFor(rng, r),
		Birth:     ymd(birth),
		Address:   streetAddress(rng, r.prefix),
		Number:    idNumber(rng, r.code, birth, sex),
		Authority: r.city + "公安局" + r.district + "分局",
		ValidFrom: ymd(issue),
		ValidTo:   residentValidity(issue, birth),
	}
}

// genPermit makes a Hong Kong, Macao or Taiwan residence permit: number
// prefix 810000/820000/830000, the holder's mainland travel permit number
// (H… for Hong Kong, M… for Macao, 8 digits for Taiwan), 5-year validity.
func genPermit(rng *rand.Rand) ga467.Identity {
	r := pick(rng, regions)
	sex := genSex(rng)
	birth := genBirth(rng, 16, 80)
	issue := genIssue(rng, birth)
	var prefix, pass string
	switch rng.IntN(3) {
	case 0:
		prefix, pass = "810000", fmt.Sprintf("H%08d", rng.IntN(1e8))
	case 1:
		prefix, pass = "820000", fmt.Sprintf("M%08d", rng.IntN(1e8))
	default:
		prefix, pass = "830000", fmt.Sprintf("%08d", rng.IntN(1e8))
	}
	return ga467.Identity{
		Type:       ga467.HKMacaoTaiwan,
		Name:       chineseName(rng, sex),
		Sex:        sex,
		Birth:      ymd(birth),
		Address:    streetAddress(rng, r.prefix),
		Number:     idNumber(rng, prefix, birth, sex),
		Authority:  r.city + "公安局",
		ValidFrom:  ymd(issue),
		ValidTo:    ymd(issue.AddDate(5, 0, 0)),
		PassNumber: pass,
		IssueCount: fmt.Sprintf("%02d", rng.IntN(4)),
	}
}

// foreigner draws a foreign holder: sex, names, country, birth, issue and
// a 10-year validity (5 years under 18).
func foreigner(rng *rand.Rand) (sex, en, zh string, c country, birth, issue, to time.Time) {
	sex = genSex(rng)
	given := foreignMale
	if sex == "2" {
		given = foreignFemale
	}
	g, s := pick(rng, given), pick(rng, foreignSurnames)
	en, zh = s.en+" "+g.en, g.zh+"·"+s.zh
	c = pick(rng, countries)
	birth = genBirth(rng, 5, 80)
	issue = genIssue(rng, birth)
	to = issue.AddDate(10, 0, 0)
	if ageOn(birth, issue) < 18 {
		to = issue.AddDate(5, 0, 0)
	}
	return
}

// genForeign2017 makes a 2017 foreign permanent resident ID card: the
// 15-character permit number is the nationality (3 letters), the first 4
// digits of the accepting region's code, the birth date YYMMDD and a
// 2-digit sequence number.
func genForeign2017(rng *rand.Rand) ga467.Identity {
	sex, en, zh, c, birth, issue, to := foreigner(rng)
	r := pick(rng, regions)
	return ga467.Identity{
		Type:          ga467.ForeignPerm,
		EnglishName:   en,
		Sex:           sex,
		Number:        fmt.Sprintf("%s%s%s%02d", c.alpha3, r.code[:4], birth.Format("060102"), rng.IntN(100)),
		Nationality:   c.alpha3,
		Name:          zh,
		ValidFrom:     ymd(issue),
		ValidTo:       ymd(to),
		Birth:         ymd(birth),
		Version:       "01",
		AuthorityCode: "1500",
	}
}

// genForeign2023 makes a 2023 foreign permanent resident ID card: an
// 18-character number 9 | province (2) | ISO 3166 numeric country (3) |
// birth date | sequence (3) | check digit.
func genForeign2023(rng *rand.Rand) ga467.Identity {
	sex, en, zh, c, birth, issue, to := foreigner(rng)
	r := pick(rng, regions)
	seq := rng.IntN(100)*10 + 2*rng.IntN(5)
	if sex == "1" {
		seq++
	}
	first17 := fmt.Sprintf("9%s%s%s%03d", r.code[:2], c.numeric, ymd(birth), seq)
	return ga467.Identity{
		Type:        ga467.ForeignPerm2023,
		Name:        zh,
		Sex:         sex,
		IssueCount:  fmt.Sprintf("%02d", rng.IntN(3)),
		Birth:       ymd(birth),
		EnglishName: en,
		Number:      first17 + string(checkDigit(first17)),
		ValidFrom:   ymd(issue),
		ValidTo:     ymd(to),
		Nationality: c.alpha3,
	}
}

// fakeWLT returns 1024 bytes shaped like a WLT photo (a "WLf" header and
// high-entropy data). It is not a decodable image.
func fakeWLT(rng *rand.Rand) []byte {
	b := make([]byte, idcard.PhotoLen)
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	copy(b, "WLf")
	return b
}

// fakeFingerprint returns 1024 bytes shaped like the fingerprint file: two
// 512-byte templates, each starting with 43 01. They match no finger.
func fakeFingerprint(rng *rand.Rand) []byte {
	b := make([]byte, idcard.FingerLen)
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	for _, off := range []int{0, 512} {
		b[off], b[off+1] = 0x43, 0x01
	}
	return b
}
